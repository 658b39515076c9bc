"""Tool gate and verification gate: pure decisions with a reason.

Tool gate: **a tool runs unless a setting says otherwise.** It declines a call only

1. when the same call (name and arguments) already failed and retrying it is not allowed
   (``agent.max_identical_retries``, default 0: a failed identical call is not repeated);
2. when the tool's configured cost cannot be paid from what is left of the run's budget
   (``max_budget`` / ``routing.max_cost_per_task``);
3. when the user configured the tool's cost (``agent.tool_costs``, or ``cost=``) and the call
   is not worth it: ``p_useful(tool, task_type) x value_usd < cost``, or ``p_useful <
   min_usefulness``. Repeating the same tool halves its usefulness each time (diminishing
   returns). ``value_usd`` defaults to what a failed step costs at the frontier tier (2000
   input + 500 output tokens, the seed's trace example): a useful tool result saves that step.

A tool with no configured cost costs $0 and is never declined for value: we do not guess
prices for the user's tools. Every decline's reason names the setting that caused it.

Verification gate: verify when the answer's confidence is below the risk's bar
(``VERIFY_CONFIDENCE_BARS``); ``critical`` always verifies. The evidence is the *answer's*
confidence (token logprobs, format checks: ``AcoCallInfo.from_message(msg).confidence``).
The router's ``predicted_success`` is weaker evidence (a prior over prompts like this one,
not a look at this answer): alone it counts for ``PREDICTION_WEIGHT`` of its value, so a
prediction can clear the low-risk bar but never the medium or high one. A verifier-call
budget keeps the verifier call rate at or under ``config.agent.verifier_budget_ratio``
(the seed alerts above 50%); when it is spent only critical steps are verified, and the
reason says so.

Usage::

    gate("my_tool").allowed                                   # True: no cost configured
    gate("web_search", "quick_answer", cost=0.01).allowed     # False: unlikely to help
    verify("high", 0.7).needed                      # True: high risk needs >= 0.90
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field

from aco_langchain.config import ACOConfig
from aco_langchain.pricing import (  # noqa: F401 - tool prices are re-exported here
    configured_tool_cost,
    cost_usd,
    tool_cost,
)
from aco_langchain.routing.base import Risk

DEFAULT_MIN_USEFULNESS = 0.25
#: Tokens of the step a useful tool result saves (the seed's trace example step).
SAVED_STEP_TOKENS = (2000, 500)

#: Which rule decided a tool call: ``runs`` (allowed) or the rule that declined it.
GateRule = Literal["runs", "identical_retry", "budget", "usefulness", "value"]
ToolKind = Literal["search", "code", "files", "fetch", "compute", "data", "other"]

#: Tool kind from name keywords (first match wins).
_KIND_KEYWORDS: list[tuple[ToolKind, tuple[str, ...]]] = [
    ("code", ("code", "test", "lint", "compile", "git")),
    ("search", ("search", "google", "bing", "lookup", "wiki")),
    ("fetch", ("fetch", "browse", "http", "url", "scrape", "crawl")),
    ("files", ("file", "read", "list", "grep", "ls", "cat", "open")),
    ("compute", ("calc", "python", "math", "wolfram", "exec")),
    ("data", ("sql", "db", "query", "table", "csv")),
]

#: P(the tool helps) by tool kind and task type; "general" is the fallback column.
TOOL_USEFULNESS: dict[ToolKind, dict[str, float]] = {
    "search": {"research": 0.85, "long_horizon": 0.6, "legal_regulated": 0.6, "coding": 0.4,
               "writing": 0.35, "summarization": 0.1, "quick_answer": 0.15, "math": 0.1,
               "reasoning": 0.2, "general": 0.4},
    "code": {"coding": 0.85, "long_horizon": 0.6, "math": 0.3, "research": 0.2,
             "general": 0.2},
    "files": {"coding": 0.8, "long_horizon": 0.7, "summarization": 0.7, "legal_regulated": 0.6,
              "research": 0.5, "writing": 0.4, "quick_answer": 0.1, "general": 0.4},
    "fetch": {"research": 0.7, "summarization": 0.6, "legal_regulated": 0.5,
              "long_horizon": 0.5, "quick_answer": 0.1, "general": 0.3},
    "compute": {"math": 0.9, "coding": 0.5, "reasoning": 0.4, "research": 0.3,
                "quick_answer": 0.3, "general": 0.3},
    "data": {"research": 0.5, "coding": 0.5, "long_horizon": 0.5, "general": 0.3},
    "other": {"general": 0.4},
}  # fmt: skip

#: Minimum confidence to skip verification, per risk. ``critical`` always verifies.
VERIFY_CONFIDENCE_BARS: dict[str, float] = {"low": 0.5, "medium": 0.7, "high": 0.9}
#: How much a router's predicted success counts when the answer's confidence is unmeasured
#: (below the medium bar even at 1.0: a prediction alone never skips medium verification).
PREDICTION_WEIGHT = 0.65


def evidence_confidence(
    confidence: float | None, predicted_success: float | None
) -> tuple[float, str]:
    """The confidence a gate acts on, and where it came from.

    The answer's measured confidence wins; else the router's prediction at
    ``PREDICTION_WEIGHT``; else 0.5 (nothing known).

    Args:
        confidence: the answer's own confidence (logprobs / format checks), if measured.
        predicted_success: the router's prediction for the tier that answered, if any.

    Returns:
        ``(value in [0, 1], source)`` with source ``answer`` / ``prediction`` / ``none``.

    Example:
        ```python
        evidence_confidence(None, 0.98)    # (0.637, 'prediction')
        evidence_confidence(0.4, 0.98)     # (0.4, 'answer')
        ```
    """
    for name, value in (("confidence", confidence), ("predicted_success", predicted_success)):
        if value is not None and not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be between 0 and 1, not {value}")
    if confidence is not None:
        return confidence, "answer"
    if predicted_success is not None:
        return round(predicted_success * PREDICTION_WEIGHT, 4), "prediction"
    return 0.5, "none"


class ToolGateDecision(BaseModel):
    """Whether to make a tool call, and why."""

    allowed: bool
    tool_name: str
    tool_kind: ToolKind
    task_type: str
    p_useful: float = Field(..., ge=0.0, le=1.0)
    value_usd: float = Field(..., ge=0.0)
    expected_value: float = Field(..., ge=0.0)
    cost: float = Field(..., ge=0.0)
    reason: str
    rule: GateRule = Field("runs", description="The rule that decided (``runs``: allowed).")


class VerifyDecision(BaseModel):
    """Whether to call the verifier, and why."""

    needed: bool
    risk: Risk
    confidence: float = Field(
        ..., ge=0.0, le=1.0, description="The confidence acted on (see ``evidence``)."
    )
    evidence: Literal["answer", "prediction", "none"] = Field(
        "answer",
        description="answer: the answer's measured confidence; prediction: the router's "
        "predicted success at PREDICTION_WEIGHT; none: neither was known (0.5).",
    )
    threshold: float | None = Field(None, description="Confidence bar for this risk.")
    budget_ok: bool = True
    verifier_rate: float | None = Field(None, description="Verifier calls / steps so far.")
    reason: str


def tool_kind(tool_name: str) -> ToolKind:
    """The kind of a tool from its name (``web_search`` -> ``search``).

    Usage::

        tool_kind("code_search")   # 'code'
    """
    low = tool_name.lower()
    tokens = set(re.split(r"[^a-z0-9]+", low))
    for kind, words in _KIND_KEYWORDS:
        # Short keywords (ls, db, url) must be a whole name part; longer ones may be inside.
        if any(w in tokens or (len(w) >= 4 and w in low) for w in words):
            return kind
    return "other"


def saved_step_value(config: ACOConfig | None = None) -> float:
    """USD a useful tool result saves: one frontier-tier (tier 4) step of the seed's size."""
    config = config or ACOConfig()
    return cost_usd(config.tier(4), *SAVED_STEP_TOKENS)


def gate(
    tool_name: str,
    task_type: str = "general",
    *,
    config: ACOConfig | None = None,
    prior_calls: int = 0,
    budget_remaining: float | None = None,
    value_usd: float | None = None,
    cost: float | None = None,
    min_usefulness: float = DEFAULT_MIN_USEFULNESS,
    identical_failures: int = 0,
) -> ToolGateDecision:
    """Decide whether to run a call of ``tool_name`` (see the module's rules).

    Args:
        tool_name: The tool.
        task_type: The task's type (for ``p_useful``).
        config: ``agent.tool_costs`` and ``agent.max_identical_retries``.
        prior_calls: How often this tool already ran in the run (each halves usefulness).
        budget_remaining: USD left of the run's budget (None: no budget check).
        value_usd: What a useful result saves (default: one frontier-tier step).
        cost: The call's cost, overriding ``agent.tool_costs`` (counts as configured).
        min_usefulness: Below this ``p_useful`` a priced tool is declined.
        identical_failures: How often this exact call (name and arguments) already failed.

    Returns:
        The decision; ``reason`` names the setting behind a decline.

    Raises:
        ValueError: A negative ``prior_calls`` or ``identical_failures``.

    Example:
        ```python
        gate("count_messages").allowed                                   # True: no cost set
        gate("web_search", "quick_answer", cost=0.05).allowed            # False: not worth it
        gate("run_tests", identical_failures=1).reason   # '... agent.max_identical_retries ...'
        ```
    """
    if prior_calls < 0 or identical_failures < 0:
        raise ValueError("prior_calls and identical_failures must be >= 0")
    config = config or ACOConfig()
    kind = tool_kind(tool_name)
    table = TOOL_USEFULNESS[kind]
    base = table.get(task_type, table.get("general", 0.3))
    p = base * (0.5**prior_calls)
    configured = cost if cost is not None else configured_tool_cost(tool_name, config)
    c = configured or 0.0
    v = saved_step_value(config) if value_usd is None else value_usd
    ev = p * v
    repeat = f" (x0.5^{prior_calls} for {prior_calls} prior call(s))" if prior_calls else ""
    head = f"{tool_name} ({kind}) for {task_type}: p_useful={p:.2f}{repeat}"
    retries = config.agent.max_identical_retries
    setting = f"agent.tool_costs[{tool_name!r}] = ${c:.4f}"
    rule: GateRule = "runs"
    if identical_failures > retries:
        rule = "identical_retry"
        why = (
            f"this exact call already failed {identical_failures} time(s) and "
            f"agent.max_identical_retries is {retries}; change the arguments or raise it"
        )
    elif c > 0 and budget_remaining is not None and c > budget_remaining:
        rule = "budget"
        why = (
            f"{setting} exceeds the run's remaining budget ${budget_remaining:.4f} "
            "(max_budget / routing.max_cost_per_task)"
        )
    elif configured is None:
        why = "no cost configured (agent.tool_costs), so it runs"
    elif c > 0 and p < min_usefulness:
        rule = "usefulness"
        why = f"{setting} and it is unlikely to help (< {min_usefulness:.2f})"
    elif ev < c:
        rule = "value"
        why = f"EV ${ev:.4f} < cost: {setting}"
    else:
        why = f"EV ${ev:.4f} (x ${v:.2f} step value) >= cost ${c:.4f}"
    allowed = rule == "runs"
    return ToolGateDecision(
        allowed=allowed,
        tool_name=tool_name,
        tool_kind=kind,
        task_type=task_type,
        p_useful=round(p, 4),
        value_usd=round(v, 6),
        expected_value=round(ev, 6),
        cost=c,
        reason=f"{'allow' if allowed else 'skip'}: {head}; {why}",
        rule=rule,
    )


def verify(
    risk: Risk,
    confidence: float | None = None,
    *,
    predicted_success: float | None = None,
    config: ACOConfig | None = None,
    verifier_calls: int = 0,
    total_steps: int = 0,
) -> VerifyDecision:
    """Decide whether an answer needs the verifier.

    Args:
        risk: the task's risk (``critical`` always verifies).
        confidence: the answer's own confidence (logprobs / format checks), if measured.
        predicted_success: the router's prediction, used at ``PREDICTION_WEIGHT`` only
            when ``confidence`` is None.
        config: for ``agent.verifier_budget_ratio``.
        verifier_calls: verifier calls of the run so far.
        total_steps: steps of the run so far, including the one to verify.

    Returns:
        The decision, its evidence and why.

    Raises:
        ValueError: an unknown risk or a confidence outside [0, 1].

    Example:
        ```python
        verify("high", 0.7).needed                            # True
        verify("low", 0.9).needed                             # False
        verify("medium", predicted_success=0.98).needed       # True: a prediction is weak
        ```
    """
    if risk not in ("low", "medium", "high", "critical"):
        raise ValueError(f"risk must be low, medium, high or critical, not {risk!r}")
    confidence, evidence = evidence_confidence(confidence, predicted_success)
    what = {
        "answer": "confidence",
        "prediction": f"predicted_success {predicted_success} x {PREDICTION_WEIGHT} =",
        "none": "no measured confidence: assumed",
    }[evidence]
    config = config or ACOConfig()
    ratio = config.agent.verifier_budget_ratio
    rate = verifier_calls / total_steps if total_steps else None
    # The first verification is always affordable (unless the ratio is 0); after that a
    # call must keep verifier calls / steps at or under the ratio.
    budget_ok = (verifier_calls == 0 and ratio > 0) or (
        (verifier_calls + 1) / max(total_steps, 1) <= ratio
    )
    if risk == "critical":
        return VerifyDecision(
            needed=True,
            risk=risk,
            confidence=confidence,
            evidence=evidence,
            budget_ok=budget_ok,
            verifier_rate=rate,
            reason="verify: critical risk is always verified",
        )
    bar = VERIFY_CONFIDENCE_BARS[risk]
    if confidence >= bar:
        return VerifyDecision(
            needed=False,
            risk=risk,
            confidence=confidence,
            evidence=evidence,
            threshold=bar,
            budget_ok=budget_ok,
            verifier_rate=rate,
            reason=f"skip: {what} {confidence:.2f} >= {bar:.2f} bar for {risk} risk",
        )
    if not budget_ok:
        return VerifyDecision(
            needed=False,
            risk=risk,
            confidence=confidence,
            evidence=evidence,
            threshold=bar,
            budget_ok=False,
            verifier_rate=rate,
            reason=(
                f"skip: verifier budget spent ({verifier_calls} of {total_steps} steps verified; "
                f"another call would exceed agent.verifier_budget_ratio {ratio:.2f})"
            ),
        )
    return VerifyDecision(
        needed=True,
        risk=risk,
        confidence=confidence,
        evidence=evidence,
        threshold=bar,
        budget_ok=True,
        verifier_rate=rate,
        reason=f"verify: {what} {confidence:.2f} < {bar:.2f} bar for {risk} risk",
    )
