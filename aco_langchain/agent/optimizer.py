"""ACOOptimizer: the seed's facade for one agent run at a time.

``start_run`` routes the request and sets the context budget; ``record_*`` feed the trace,
the doom detector and the spend ledger (the same ledger ``ACORouterChatModel`` and ``aco
spend`` use, under the run's id: ``opt.spent()``, ``check_doom`` and the tool gate read it);
``cascade_step`` decides escalation (delegating to
``aco_langchain.chat.cascade``); ``check_doom`` says when to stop; ``end_run`` closes the trace
and writes it to the sink (``sink=`` or ``config.trace_path``); ``stats`` summarises the
runs this optimizer finished.

One run at a time per optimizer (not thread-safe): a new ``start_run`` drops an unfinished
run without writing it (so the seed's "route only" use, which never calls ``end_run``,
leaves no half-runs in the trace file).

Usage::

    from aco_langchain.agent.optimizer import ACOOptimizer
    from aco_langchain.config import ACOConfig
from aco_langchain.spend.budgets import run_scope
from aco_langchain.spend.ledger.base import Hold, Limit, SpendRecord
    opt = ACOOptimizer(ACOConfig(router_model_path="router_models/bundle"))
    result = opt.start_run("Debug this critical production bug")
    result["routing"]          # tier, model_id, confidence, cost_estimate, ...
    result["context_budget"]   # total_tokens, keep_exact, omit, ...
    opt.record_model_call(model_id=result["routing"]["model_id"], input_tokens=900,
                          output_tokens=200)
    trace = opt.end_run(success=True)
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aco_langchain.agent.doom import DoomDetector, DoomResult
from aco_langchain.agent.gates import ToolGateDecision, VerifyDecision, gate, tool_cost, verify
from aco_langchain.config import ACOConfig
from aco_langchain.spend.budgets import run_scope
from aco_langchain.spend.ledger.base import Hold, Limit, SpendRecord
from aco_langchain.tracing.sinks import JsonlTraceSink, TraceSink
from aco_langchain.tracing.trace import FinalOutcome, ModelCall, ToolCall, Trace, TraceRecorder

if TYPE_CHECKING:
    from aco_langchain.chat.cascade import CascadeResult
    from aco_langchain.routing.base import RouteDecision, Router, RouteRequest
    from aco_langchain.spend.ledger import SpendLedger
    from aco_langchain.tracing.stats import StatsReport

logger = logging.getLogger(__name__)

#: Finished traces kept in memory for ``stats()``.
MAX_KEPT_TRACES = 10_000


class ACOOptimizer:
    """Route, budget, gate, watch and trace one agent run at a time.

    ``unavailable``: tiers to treat as unavailable when routing (e.g.
    ``TierRegistry(cfg).unavailable()``); by default routing says what is optimal.
    ``ledger``: the spend ledger object (``open_ledger(url)``); None opens the one
    ``ACORouterChatModel`` would (``$ACO_LEDGER_URL``, ``ledger.url``, else the SQLite default).
    A URL string is the deprecated spelling of the config's ``ledger.url`` (it warns).

    Example:
        ```python
        opt = ACOOptimizer()                       # defaults, learned router when shipped
        opt = ACOOptimizer(cfg, sink=InMemoryTraceSink())
        ```
    """

    def __init__(
        self,
        config: ACOConfig | None = None,
        *,
        router: Router | None = None,
        sink: TraceSink | None = None,
        unavailable: Mapping[int, str] | None = None,
        ledger: SpendLedger | str | None = None,
    ) -> None:
        from aco_langchain.config_deprecations import move_model_kwargs
        from aco_langchain.spend.ledger import open_ledger

        if isinstance(ledger, str):  # one home: ledger.url (the URL still wins over the env)
            config = move_model_kwargs({"config": config, "ledger": ledger}, "ACOOptimizer")[
                "config"
            ]
        self.config = config or ACOConfig()
        self.ledger: SpendLedger = (
            ledger
            if ledger is not None and not isinstance(ledger, str)
            else open_ledger(ledger, self.config)
        )
        self._router = router
        if sink is None and self.config.trace_path:
            sink = JsonlTraceSink(self.config.trace_path)
        self.sink = sink
        self.unavailable = dict(unavailable or {})
        self.traces: deque[Trace] = deque(maxlen=MAX_KEPT_TRACES)
        self._rec: TraceRecorder | None = None
        self._doom: DoomDetector | None = None
        self._decision: RouteDecision | None = None
        self._last_doom: DoomResult | None = None
        self._pending_escalation = False
        self._tool_counts: dict[str, int] = {}
        self._verifier_calls = 0

    # ------------------------------------------------------------------ run lifecycle
    @property
    def router(self) -> Router:
        """The router in use (``get_router(config)`` on first use)."""
        if self._router is None:
            from aco_langchain.routing import get_router

            self._router = get_router(self.config)
        return self._router

    @property
    def current_trace(self) -> Trace | None:
        """The trace of the run in progress, or None."""
        return self._rec.trace if self._rec else None

    @property
    def run_id(self) -> str | None:
        """The id of the run in progress (the trace id), or None."""
        return self._rec.trace.trace_id if self._rec else None

    def start_run(
        self,
        request: str | RouteRequest,
        *,
        max_budget: float | None = None,
        **constraints: Any,
    ) -> dict[str, Any]:
        """Route ``request``, set its context budget and open its trace.

        ``constraints``: RouteConstraints fields (``risk=``, ``task_type=``, ...).
        ``max_budget``: USD for the doom detector (default ``routing.max_cost_per_task``).

        Usage::

            r = opt.start_run("Fix the typo in README")
            r["run_id"], r["routing"]["tier"], r["context_budget"]["total_tokens"]
        """
        from aco_langchain.routing import RouteRequest, route
        from aco_langchain.spend.context import context_budget

        if isinstance(request, str):
            if not request.strip():
                raise ValueError("request is empty: pass the task text to start_run")
            req = RouteRequest.from_text(request, **constraints)
        else:
            req = request
        decision = route(req, self.config, router=self.router, unavailable=self.unavailable)
        budget = context_budget(
            req.text, self.config, tier=decision.tier, task_type=decision.task_type
        )
        self._decision = decision
        self._rec = TraceRecorder(
            request=req.text,
            task_type=decision.task_type,
            # a forced tier is decided without an assessment: the trace's default difficulty
            difficulty=decision.difficulty or 1,
            predicted_tier=decision.tier,
        )
        self._doom = DoomDetector(self.config, max_budget=max_budget)
        self._last_doom = None
        self._pending_escalation = False
        self._tool_counts = {}
        self._verifier_calls = 0
        return {
            "run_id": self._rec.trace.trace_id,
            "routing": decision.as_routing_dict(),
            "context_budget": {
                "total_tokens": budget.total_tokens,
                "keep_exact": budget.keep_exact,
                "summarize": budget.summarize,
                "omit": budget.omit,
                "context_window": budget.context_window,
                "output_reserve": budget.output_reserve,
            },
        }

    def _require_run(self, what: str) -> tuple[TraceRecorder, DoomDetector]:
        if self._rec is None or self._doom is None:
            raise RuntimeError(f"{what}: no run in progress; call start_run(request) first")
        return self._rec, self._doom

    def end_run(
        self,
        success: bool,
        *,
        final_outcome: FinalOutcome | None = None,
        claimed_done: bool | None = None,
        verified: bool | None = None,
    ) -> Trace:
        """Close the run: outcome, total cost; write the trace to the sink; return it.

        Without ``final_outcome``: ``completed`` on success, ``doomed`` when the last
        ``check_doom`` said so, else ``failed``.

        Usage::

            trace = opt.end_run(success=True, claimed_done=True)
        """
        rec, _ = self._require_run("end_run")
        doom = self._last_doom if self._last_doom and self._last_doom.doomed else None
        if final_outcome is None and not success and doom is not None:
            final_outcome = "doomed"
        trace = rec.finish(
            task_success=success,
            final_outcome=final_outcome,
            claimed_done=claimed_done,
            verified=verified,
            doom_reason=doom.reason if doom else None,
        )
        self._rec = None
        self._doom = None
        self.traces.append(trace)
        if self.sink is not None:
            self.sink.write(trace)
        return trace

    # ------------------------------------------------------------------ recording
    def record_model_call(
        self,
        model_id: str | None = None,
        tier: int | None = None,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cost: float | None = None,
        *,
        step_num: int | None = None,
        escalated: bool | None = None,
        cache_hit: bool = False,
        fallback_from: int | None = None,
        latency_ms: float | None = None,
        output: str | None = None,
        progress: bool | None = None,
        action: str | None = None,
        on_ledger: bool = True,
    ) -> ModelCall:
        """Record a model call as a step of the run.

        ``tier`` / ``model_id``: either names the other (default: the routed tier).
        ``cost``: USD (default: tokens at the tier's configured price). ``escalated``:
        default True right after a ``cascade_step`` that escalated. ``output`` /
        ``progress``: for the doom detector's no-progress rule. ``on_ledger``: write the call to
        the spend ledger under the run's id; False when it is there already (an
        ``ACORouterChatModel`` call made with ``aco_run_id=opt.run_id`` settles itself).

        Usage::

            opt.record_model_call(model_id="medium-70b", input_tokens=1200, output_tokens=300)
        """
        from aco_langchain.pricing import cost_usd

        rec, doom = self._require_run("record_model_call")
        if tier is None:
            if model_id is not None:
                tier = self.config.tier_of_model(model_id)
                if tier is None:
                    raise ValueError(
                        f"model_id {model_id!r} names no tier: pass tier= as well, or use one of "
                        + ", ".join(self.config.tier(n).model_id for n in range(1, 6))
                    )
            else:
                tier = rec.trace.predicted_tier
        spec = self.config.tier(tier)
        model_id = model_id or spec.model_id
        if cost is None:
            cost = cost_usd(spec, input_tokens, output_tokens)
        if escalated is None:
            escalated = self._pending_escalation
        self._pending_escalation = False
        call = rec.record_model_call(
            model_id=model_id,
            tier=tier,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost=cost,
            step_num=step_num,
            escalated=escalated,
            cache_hit=cache_hit,
            fallback_from=fallback_from,
            latency_ms=latency_ms,
            action=action,
        )
        doom.record_step(cost=cost, output=output, progress=progress)
        if on_ledger:
            self._bill(
                SpendRecord(
                    run_key=rec.trace.trace_id,
                    cost_usd=cost,
                    input_tokens=input_tokens,
                    output_tokens=output_tokens,
                    tier=tier,
                    model=model_id,
                    provider=spec.provider,
                    latency_ms=latency_ms or 0.0,
                    outcome="cache_hit" if cache_hit else "ok",
                    baseline_usd=self._baseline(input_tokens, output_tokens),
                    trace_id=rec.trace.trace_id,
                )
            )
        return call

    def _bill(self, record: SpendRecord) -> None:
        """Write a call that already happened: a $0 hold on the run (it always passes), settled
        at the call's cost, so the row carries its tier, model and tokens."""
        scope = Limit(run_scope(record.run_key))
        hold = self.ledger.hold([scope], usd=0.0, ttl_s=60.0, owner="aco-optimizer")
        assert isinstance(hold, Hold), "an unlimited $0 hold is never refused"  # noqa: S101
        self.ledger.settle(hold, record)

    def _baseline(self, input_tokens: int, output_tokens: int) -> float:
        from aco_langchain.errors import ConfigError
        from aco_langchain.pricing import cost_usd

        try:
            spec = self.config.tier(self.config.ledger.baseline_tier)
            return cost_usd(spec, input_tokens, output_tokens)
        except ConfigError as err:  # the baseline tier has no price: savings unknown
            logger.info("no baseline price for the ledger row: %s", err)
            return 0.0

    def spent(self) -> float:
        """USD the run in progress has spent, from the spend ledger (every process and model
        that spent under the run's id counts).

        Usage::

            opt.start_run("Fix the bug"); ...; opt.spent()
        """
        rec, _ = self._require_run("spent")
        return self.ledger.spent(rec.trace.trace_id)

    def record_tool_call(
        self,
        tool_name: str,
        success: bool = True,
        cost: float | None = None,
        *,
        args: Any = None,
        error: str | None = None,
        step_num: int | None = None,
    ) -> ToolCall:
        """Record a tool call in the current step.

        ``cost`` defaults to ``config.agent.tool_costs`` / the gate's defaults. ``args``
        identify "the same call" for the repeated-failure rule.

        Usage::

            opt.record_tool_call("run_tests", success=False, args={"path": "tests/"})
        """
        rec, doom = self._require_run("record_tool_call")
        c = tool_cost(tool_name, self.config) if cost is None else cost
        call = rec.record_tool_call(
            tool_name, success=success, cost=c, error=error, step_num=step_num
        )
        doom.record_tool(tool_name, args, success, cost=c)
        if c > 0:
            self.ledger.add(rec.trace.trace_id, c)
        self._tool_counts[tool_name] = self._tool_counts.get(tool_name, 0) + 1
        return call

    def record_verifier_call(
        self, passed: bool | None = None, cost: float = 0.0, *, step_num: int | None = None
    ) -> None:
        """Record that the current step (or ``step_num``) was verified, and the verdict.

        Usage::

            opt.record_verifier_call(passed=True, cost=0.002)
        """
        rec, doom = self._require_run("record_verifier_call")
        rec.record_verifier_call(passed=passed, cost=cost, step_num=step_num)
        doom.add_cost(cost)
        if cost > 0:
            self.ledger.add(rec.trace.trace_id, cost)
        self._verifier_calls += 1

    # ------------------------------------------------------------------ decisions
    def cascade_step(
        self,
        request: Any,
        initial_tier: int,
        cheap_logprobs: Any,
        cheap_response: Any,
        *,
        threshold: float | None = None,
        provider: str = "openai",
    ) -> CascadeResult:
        """Escalate or not, from the cheap tier's answer (``aco_langchain.chat.cascade``).

        An escalation marks the next ``record_model_call`` as escalated.

        Usage::

            c = opt.cascade_step(request, 1, msg.response_metadata.get("logprobs"), msg)
            if c.escalated: answer = call_model(c.final_tier, request)
        """
        from aco_langchain.chat.cascade import cascade_step as _cascade_step

        result = _cascade_step(
            request,
            initial_tier,
            cheap_logprobs,
            cheap_response,
            config=self.config,
            threshold=threshold,
            provider=provider,
            available_tiers=[n for n in range(1, 6) if n not in self.unavailable],
        )
        if result.escalated and self._rec is not None:
            self._pending_escalation = True
        return result

    def check_doom(self, total_spent: float | None = None) -> DoomResult:
        """Is the run doomed? ``total_spent`` (e.g. ``PerStepRouter.total_spent``) overrides
        the run's spend on the ledger.

        Usage::

            if opt.check_doom(ps.total_spent).doomed: break
        """
        rec, doom = self._require_run("check_doom")
        spent = self.ledger.spent(rec.trace.trace_id) if total_spent is None else total_spent
        self._last_doom = doom.check(spent)
        return self._last_doom

    def gate(self, tool_name: str, task_type: str | None = None, **kwargs: Any) -> ToolGateDecision:
        """The tool gate for this run (task type, prior calls and budget filled in).

        Usage::

            if opt.gate("web_search").allowed: ...
        """
        rec, doom = self._require_run("gate")
        kwargs.setdefault("prior_calls", self._tool_counts.get(tool_name, 0))
        spent = self.ledger.spent(rec.trace.trace_id)
        kwargs.setdefault("budget_remaining", max(0.0, doom.max_budget - spent))
        return gate(tool_name, task_type or rec.trace.task_type, config=self.config, **kwargs)

    def verify(self, risk: str, confidence: float) -> VerifyDecision:
        """The verification gate for this run (its verifier-call budget applied).

        Usage::

            if opt.verify("high", 0.7).needed: run_verifier(); opt.record_verifier_call(True)
        """
        rec, _ = self._require_run("verify")
        return verify(
            risk,  # type: ignore[arg-type]
            confidence,
            config=self.config,
            verifier_calls=self._verifier_calls,
            total_steps=len(rec.trace.steps),
        )

    def stats(self) -> StatsReport:
        """The seed's metrics and alerts over the runs this optimizer finished.

        Usage::

            opt.stats().cost_per_successful_task
        """
        from aco_langchain.tracing.stats import compute_stats

        return compute_stats(list(self.traces), self.config)
