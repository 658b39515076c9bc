"""Context budget: how many tokens a call may use, what to keep exactly, what to drop.

``context_budget`` is a pure decision: from the routed tier's context window
(``config.tier(n).max_context``), a reserve for the answer, the run's token cap
(``routing.max_tokens_per_task``) and the task type, it says which parts of the context
are kept verbatim (system prompt, latest user turn, the tool results the step needs, ...),
which are summarised, and which are omitted. ``apply_context_budget`` applies it to a
LangChain message list, built on ``trim_messages`` and ``count_tokens_approximately``.

Usage::

    b = context_budget("Research transformer advances", ACOConfig())
    b.total_tokens, b.keep_exact, b.omit
    trimmed = apply_context_budget(messages, b.total_tokens)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from aco_langchain.config import ACOConfig

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage

#: Always kept verbatim, whatever the task.
BASE_KEEP = ("system_prompt", "latest_user_turn", "latest_tool_results")
#: Always dropped first.
BASE_OMIT = ("duplicate_messages", "stale_tool_results")

#: Per task type: (extra parts kept exactly, parts summarised, extra parts omitted).
TASK_CONTEXT_RULES: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "quick_answer": ((), (), ("conversation_history", "tool_results_before_latest")),
    "coding": (
        ("code_under_edit", "error_messages", "failing_test_output"),
        ("conversation_history",),
        ("unrelated_files",),
    ),
    "math": (("problem_statement",), ("conversation_history",), ("tool_results_before_latest",)),
    "reasoning": (("problem_statement",), ("conversation_history",), ()),
    "research": (
        ("cited_sources",),
        ("older_search_results", "conversation_history"),
        ("raw_html", "search_result_boilerplate"),
    ),
    "writing": (("style_instructions", "current_draft"), ("conversation_history",), ()),
    "summarization": (("source_document",), (), ("conversation_history",)),
    "legal_regulated": (
        ("quoted_clauses", "source_document", "conversation_history"),
        (),
        (),
    ),
    "long_horizon": (
        ("plan", "open_subtasks"),
        ("completed_steps", "older_tool_results"),
        ("raw_tool_logs",),
    ),
    "general": ((), ("conversation_history",), ()),
}

#: Share of the context window reserved for the answer, and its bounds in tokens.
OUTPUT_RESERVE_RATIO = 0.25
OUTPUT_RESERVE_MAX = 4096


class ContextBudget(BaseModel):
    """What a call's context may hold. ``total_tokens`` is the input budget."""

    tier: int = Field(..., ge=1, le=5)
    model_id: str
    task_type: str
    context_window: int = Field(..., gt=0)
    output_reserve: int = Field(..., ge=0)
    total_tokens: int = Field(..., ge=0, description="Input tokens the call may use.")
    keep_exact: list[str]
    summarize: list[str]
    omit: list[str]
    reason: str

    def as_dict(self) -> dict[str, object]:
        """The seed's ``start_run(...)["context_budget"]`` shape (plus the extras)."""
        return self.model_dump()


def context_budget(
    request: str,
    config: ACOConfig | None = None,
    *,
    tier: int | None = None,
    task_type: str | None = None,
) -> ContextBudget:
    """The context budget for ``request`` at ``tier`` (routed when not given).

    Usage::

        context_budget("Research transformer advances").keep_exact
    """
    config = config or ACOConfig()
    if tier is None or task_type is None:
        from aco_langchain.routing import RouteRequest, route

        decision = route(RouteRequest.from_text(request), config)
        tier = tier if tier is not None else decision.tier
        task_type = task_type if task_type is not None else decision.task_type
    spec = config.tier(tier)
    window = spec.max_context
    reserve = min(int(window * OUTPUT_RESERVE_RATIO), OUTPUT_RESERVE_MAX)
    total = min(window - reserve, config.routing.max_tokens_per_task)
    keep, summarize, omit = TASK_CONTEXT_RULES.get(task_type, TASK_CONTEXT_RULES["general"])
    keep_exact = list(dict.fromkeys((*BASE_KEEP, *keep)))
    omit_all = [p for p in dict.fromkeys((*BASE_OMIT, *omit)) if p not in keep_exact]
    summ = [p for p in summarize if p not in keep_exact and p not in omit_all]
    capped = " (capped by routing.max_tokens_per_task)" if total < window - reserve else ""
    return ContextBudget(
        tier=tier,
        model_id=spec.model_id,
        task_type=task_type,
        context_window=window,
        output_reserve=reserve,
        total_tokens=total,
        keep_exact=keep_exact,
        summarize=summ,
        omit=omit_all,
        reason=(
            f"tier {tier} ({spec.model_id}) window {window} - {reserve} reserved for the "
            f"answer = {total} input tokens{capped}; rules for task type {task_type!r}"
        ),
    )


def _count(messages: Sequence[BaseMessage]) -> int:
    from langchain_core.messages.utils import count_tokens_approximately

    return count_tokens_approximately(messages)


def _stub_tool_result(message: BaseMessage) -> BaseMessage:
    n = _count([message])
    return message.model_copy(
        update={"content": f"[tool result omitted by context budget: ~{n} tokens]"}
    )


def apply_context_budget(
    messages: Sequence[BaseMessage],
    budget: ContextBudget | int,
    *,
    summarizer: Callable[[list[BaseMessage]], str] | None = None,
) -> list[BaseMessage]:
    """Fit ``messages`` into the budget, keeping the parts that must stay exact.

    Kept verbatim: system messages, the latest human turn, and the messages after it (the
    current step's tool calls and results; older rounds there are stubbed before anything
    in them is dropped, so every tool call keeps its tool result). Earlier conversation is
    trimmed from the oldest end with ``trim_messages`` (whole turns, starting on a human
    message). With ``summarizer``, the dropped messages are summarised into the system
    prompt. If the kept parts alone exceed the budget, they are returned as they are.

    Usage::

        apply_context_budget(messages, context_budget("Fix the bug", cfg))
    """
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
    from langchain_core.messages.utils import count_tokens_approximately, trim_messages

    max_tokens = budget.total_tokens if isinstance(budget, ContextBudget) else int(budget)
    msgs = list(messages)
    if _count(msgs) <= max_tokens:
        return msgs
    system = [m for m in msgs if isinstance(m, SystemMessage)]
    rest = [m for m in msgs if not isinstance(m, SystemMessage)]
    last_human = max((i for i, m in enumerate(rest) if isinstance(m, HumanMessage)), default=-1)
    if last_human < 0:
        history, turn = [], rest
    else:
        history, turn = rest[:last_human], rest[last_human:]

    # Within the current turn keep the latest tool round exact; stub older results if needed.
    tool_rounds = [i for i, m in enumerate(turn) if isinstance(m, AIMessage) and m.tool_calls]
    if tool_rounds and _count(system + turn) > max_tokens:
        latest_round = tool_rounds[-1]
        turn = [
            _stub_tool_result(m) if isinstance(m, ToolMessage) and i < latest_round else m
            for i, m in enumerate(turn)
        ]

    room = max_tokens - _count(system + turn)
    kept_history: list[BaseMessage] = []
    if room > 0 and history:
        kept_history = trim_messages(
            history,
            max_tokens=room,
            token_counter=count_tokens_approximately,
            strategy="last",
            start_on="human",
            allow_partial=False,
        )
    dropped = history[: len(history) - len(kept_history)]
    if dropped and summarizer is not None:
        note = "Summary of earlier conversation (omitted for the context budget): " + summarizer(
            dropped
        )
        if system:
            first = system[0]
            system = [
                first.model_copy(update={"content": f"{first.text}\n\n{note}"}),
                *system[1:],
            ]
        else:
            system = [SystemMessage(content=note)]
    return [*system, *kept_history, *turn]
