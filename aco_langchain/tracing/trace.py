"""The trace schema: one run of an agent, step by step, in the seed's Trace Format.

Field for field the seed's JSON (``trace_id``, ``request``, ``task_type``, ``difficulty``,
``predicted_tier``, ``steps[].step_num``, ``steps[].model_call{model_id, tier, input_tokens,
output_tokens, cost}``, ``steps[].tool_calls[{tool_name, success, cost}]``,
``steps[].verifier_called``, ``final_outcome``, ``task_success``, ``total_cost``), plus:

- ``schema_version`` (bumped on incompatible changes; readers ignore unknown fields);
- optional extras that ``aco stats`` needs: ``escalated`` / ``cache_hit`` / ``fallback_from``
  on model calls, ``verifier_passed`` on steps, ``claimed_done`` / ``verified`` on the run
  (false-DONE: the agent said it was done but the task failed), and ``doom_reason``.

``TraceRecorder`` is the one way to build a trace incrementally (the optimizer, the chat
model, callback handlers and graph nodes all use it), so every producer writes the same shape.

Usage::

    rec = TraceRecorder(request="Fix the auth bug", task_type="coding",
                        difficulty=4, predicted_tier=5)
    rec.record_model_call(model_id="specialist-expert", tier=5, input_tokens=2000,
                          output_tokens=500, cost=3.50)
    rec.record_tool_call("code_search", success=True, cost=0.01)
    trace = rec.finish(task_success=True)          # final_outcome="completed"
    trace.total_cost                                # 3.51
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: Current trace schema version. Readers accept older versions and ignore unknown fields.
SCHEMA_VERSION = 1

#: What a run ended as. ``completed``/``failed`` are the agent's own ending; ``doomed`` means
#: the doom detector stopped it, ``budget_exceeded`` the budget, ``stopped`` the caller,
#: ``error`` an exception, ``in_progress`` a trace written before its end (e.g. a snapshot).
FinalOutcome = Literal[
    "completed", "failed", "doomed", "budget_exceeded", "stopped", "error", "in_progress"
]


class _TraceModel(BaseModel):
    # Tolerant reading: a newer writer's extra fields are ignored, not an error.
    model_config = ConfigDict(extra="ignore", validate_assignment=True)


class ModelCall(_TraceModel):
    """One call to a tier's model. ``cost`` is USD."""

    model_id: str
    tier: int = Field(..., ge=1, le=5)
    input_tokens: int = Field(0, ge=0)
    output_tokens: int = Field(0, ge=0)
    cost: float = Field(0.0, ge=0.0)
    escalated: bool = Field(False, description="This call is an escalation (cascade/retry up).")
    cache_hit: bool = Field(False, description="Answered from a prompt/response cache.")
    fallback_from: int | None = Field(
        None, ge=1, le=5, description="The tier that failed or was unavailable, if any."
    )
    latency_ms: float | None = Field(None, ge=0.0)


class ToolCall(_TraceModel):
    """One tool invocation. ``cost`` is USD (``config.agent.tool_costs`` or measured)."""

    tool_name: str
    success: bool = True
    cost: float = Field(0.0, ge=0.0)
    error: str | None = Field(None, description="The error, or why a declined call did not run.")
    skipped: bool = Field(False, description="Declined by a gate or a human: it did not run.")
    latency_ms: float | None = Field(None, ge=0.0)
    call_id: str | None = Field(None, description="The model's tool call id.")


class TraceStep(_TraceModel):
    """One agent step: at most one model call, any tool calls, maybe a verifier call."""

    step_num: int = Field(..., ge=1)
    model_call: ModelCall | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    verifier_called: bool = False
    verifier_passed: bool | None = None
    verifier_cost: float = Field(0.0, ge=0.0)
    verifier_verdicts: list[bool | None] = Field(
        default_factory=list,
        description="Every verifier verdict of the step, in order (None: no clear verdict).",
    )
    action: str | None = Field(None, description="What the step did, when known.")

    @property
    def cost(self) -> float:
        """USD spent in this step (model + tools + verifier)."""
        model = self.model_call.cost if self.model_call else 0.0
        return model + sum(t.cost for t in self.tool_calls) + self.verifier_cost


class Trace(_TraceModel):
    """A whole run in the seed's Trace Format (plus ``schema_version`` and extras).

    Example:
        ```python
        trace = Trace.model_validate_json(line)   # one line of traces/aco_traces.jsonl
        trace.total_cost, trace.final_outcome, [s.tier for s in trace.steps]
        ```
    """

    schema_version: int = SCHEMA_VERSION
    trace_id: str = Field(default_factory=lambda: uuid.uuid4().hex[:12])
    request: str
    task_type: str = "general"
    difficulty: int = Field(1, ge=1, le=5)
    predicted_tier: int = Field(1, ge=1, le=5)
    steps: list[TraceStep] = Field(default_factory=list)
    final_outcome: FinalOutcome = "in_progress"
    task_success: bool | None = Field(
        None,
        description="Observed outcome: None until something reports it (record_outcome, "
        "aco outcome, an aco_outcome event, a verifier's verdict, a replay's outcome, an "
        "error); predicted success is never an outcome.",
    )
    run_key: str | None = Field(None, description="The ledger's run key (outcomes join on it).")
    total_cost: float = Field(0.0, ge=0.0)
    claimed_done: bool | None = Field(None, description="The agent said it finished.")
    verified: bool | None = Field(None, description="A verifier confirmed the final answer.")
    doom_reason: str | None = None
    started_at: float | None = None
    ended_at: float | None = None

    def compute_total_cost(self) -> float:
        """Sum of every step's cost (what ``total_cost`` should be)."""
        return round(sum(s.cost for s in self.steps), 10)

    @property
    def model_calls(self) -> list[ModelCall]:
        """All model calls in step order."""
        return [s.model_call for s in self.steps if s.model_call is not None]

    @property
    def escalated(self) -> bool:
        """Whether any model call in the run was an escalation."""
        return any(m.escalated for m in self.model_calls)

    @property
    def false_done(self) -> bool:
        """The agent claimed it was done, but the task did not succeed."""
        return bool(self.claimed_done) and self.task_success is False


class TraceRecorder:
    """Builds one ``Trace`` call by call.

    A model call opens a new step (unless ``step_num`` names an existing one); tool and
    verifier calls attach to the current step (opening one if there is none yet).

    Example:
        ```python
        rec = TraceRecorder(request="What is 2+2?")
        rec.record_model_call(model_id="tiny-local-3b", tier=1, input_tokens=10)
        trace = rec.finish(task_success=True)
        ```
    """

    def __init__(
        self,
        request: str,
        *,
        trace_id: str | None = None,
        task_type: str = "general",
        difficulty: int = 1,
        predicted_tier: int = 1,
    ) -> None:
        kwargs: dict[str, Any] = {"trace_id": trace_id} if trace_id else {}
        self.trace = Trace(
            request=request,
            task_type=task_type,
            difficulty=difficulty,
            predicted_tier=predicted_tier,
            started_at=time.time(),
            **kwargs,
        )

    @property
    def total_cost(self) -> float:
        """USD recorded so far."""
        return self.trace.compute_total_cost()

    def current_step(self) -> TraceStep | None:
        """The latest step, or None before the first call."""
        return self.trace.steps[-1] if self.trace.steps else None

    def _step(self, step_num: int | None, *, new: bool) -> TraceStep:
        steps = self.trace.steps
        if step_num is not None:
            for s in steps:
                if s.step_num == step_num:
                    return s
            step = TraceStep(step_num=step_num)
            steps.append(step)
            return step
        if not new and steps:
            return steps[-1]
        step = TraceStep(step_num=(max(s.step_num for s in steps) + 1) if steps else 1)
        steps.append(step)
        return step

    def record_model_call(
        self,
        *,
        model_id: str,
        tier: int,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cost: float = 0.0,
        step_num: int | None = None,
        escalated: bool = False,
        cache_hit: bool = False,
        fallback_from: int | None = None,
        latency_ms: float | None = None,
        action: str | None = None,
    ) -> ModelCall:
        """Add a model call as a new step (or to step ``step_num`` if it has none yet).

        A second model call for the same ``step_num`` opens a new step instead (the
        seed's format has one model call per step).
        """
        call = ModelCall(
            model_id=model_id,
            tier=tier,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost=cost,
            escalated=escalated,
            cache_hit=cache_hit,
            fallback_from=fallback_from,
            latency_ms=latency_ms,
        )
        step = self._step(step_num, new=True)
        if step.model_call is not None:
            step = self._step(None, new=True)
        step.model_call = call
        if action is not None:
            step.action = action
        return call

    def record_tool_call(
        self,
        tool_name: str,
        *,
        success: bool = True,
        cost: float = 0.0,
        error: str | None = None,
        step_num: int | None = None,
        skipped: bool = False,
        latency_ms: float | None = None,
        call_id: str | None = None,
    ) -> ToolCall:
        """Attach a tool call to the current step (or ``step_num``)."""
        call = ToolCall(
            tool_name=tool_name,
            success=success,
            cost=cost,
            error=error,
            skipped=skipped,
            latency_ms=latency_ms,
            call_id=call_id,
        )
        self._step(step_num, new=False).tool_calls.append(call)
        return call

    def record_verifier_call(
        self, *, passed: bool | None = None, cost: float = 0.0, step_num: int | None = None
    ) -> TraceStep:
        """Mark the current step (or ``step_num``) as verified, with the verdict if known."""
        step = self._step(step_num, new=False)
        step.verifier_called = True
        step.verifier_passed = passed
        step.verifier_cost += cost
        return step

    def finish(
        self,
        *,
        task_success: bool | None,
        final_outcome: FinalOutcome | None = None,
        claimed_done: bool | None = None,
        verified: bool | None = None,
        doom_reason: str | None = None,
    ) -> Trace:
        """Close the trace: outcome, success, total cost. Returns the finished Trace."""
        t = self.trace
        t.task_success = task_success
        t.final_outcome = final_outcome or ("failed" if task_success is False else "completed")
        t.claimed_done = claimed_done
        t.verified = verified
        t.doom_reason = doom_reason
        t.total_cost = t.compute_total_cost()
        t.ended_at = time.time()
        return t
