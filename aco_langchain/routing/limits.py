"""What bounds a decision: context sizes, forced tiers, risk floors, estimates, availability.

Small pure helpers the decision pipeline (``routing/pipeline.py``) and the chat planner share.

Example:
    ```python
    from aco_langchain.routing.limits import tiers_that_fit, estimate_call_cost
    tiers_that_fit(cfg, RouteRequest.from_text("hi"))        # {1, 2, 3, 4, 5}
    estimate_call_cost(cfg, 4, RouteRequest.from_text("hi"))
    ```
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from aco_langchain.config import TIER_NUMBERS, ACOConfig
from aco_langchain.errors import RoutingError
from aco_langchain.pricing import DEFAULT_OUTPUT_TOKENS, cost_usd, estimate_tokens
from aco_langchain.routing.base import RouteRequest

#: The lowest tier a risk allows (high -> 3, critical -> 5: seed 3's "critical: specialists").
RISK_FLOORS = {"low": 1, "medium": 1, "high": 3, "critical": 5}


def estimate_call_cost(config: ACOConfig, tier: int, request: RouteRequest) -> float:
    """USD estimate for sending ``request`` to ``tier`` (approximate token counts)."""
    out_tokens = request.expected_output_tokens or DEFAULT_OUTPUT_TOKENS
    return cost_usd(config.tier(tier), estimate_tokens(request.text), out_tokens)


def nearest_available(tier: int, unavailable: Mapping[int, str], allowed: set[int]) -> int | None:
    """The nearest tier that is available and allowed: up first, then down."""
    for n in [t for t in TIER_NUMBERS if t >= tier] + [
        t for t in reversed(TIER_NUMBERS) if t < tier
    ]:
        if n in allowed and n not in unavailable:
            return n
    return None


def no_tier_message(
    config: ACOConfig,
    unavailable: Mapping[int, str],
    allowed: set[int],
    request: RouteRequest,
    fit: Collection[int] | None = None,
) -> str:
    """Why no tier can serve ``request``: every tier with its reason, then the fixes.

    Example:
        ```python
        no_tier_message(cfg, {1: "local model not running (aco local-model start)",
                              2: "no OPENAI_API_KEY"}, {1, 2}, request)
        # "no tier can serve this call: tier 1 (tiny-local-3b): local model not running ...;
        #  fix: start the local model ...; or set OPENAI_API_KEY"
        ```
    """
    why: dict[int, str] = {}
    for n in TIER_NUMBERS:
        if n in unavailable:
            why[n] = unavailable[n]
        elif fit is not None and n not in fit:
            why[n] = f"the request does not fit its max_context ({config.tier(n).max_context})"
        elif n not in allowed:
            why[n] = "no tool calling"
    fixes: list[str] = []
    reasons = list(why.values())
    if any("local model not running" in r for r in reasons):
        fixes.append("start the local model with `aco local-model start`")
    keys = sorted({r[3:] for r in reasons if r.startswith("no ") and r[3:].isupper()})
    if keys:
        fixes.append("set " + " or ".join(keys))
    if any(r == "no tool calling" for r in reasons):
        fixes.append(
            "add 'tools' to a tier's capabilities (models.tierN.capabilities) or call without tools"
        )
    if any("cooling down" in r for r in reasons):
        fixes.append("wait for the cooldown (its tier kept failing)")
    what = "this tool-bound call" if request.n_tools else "this call"
    lines = "; ".join(f"tier {n} ({config.tier(n).model_id}): {w}" for n, w in sorted(why.items()))
    return f"no tier can serve {what}: {lines}" + (f"; fix: {'; or '.join(fixes)}" if fixes else "")


def output_cap(request: RouteRequest, config: ACOConfig) -> int:
    """The output cap sent to the tier: the call's ``max_tokens``, else
    ``routing.max_output_tokens``."""
    return request.expected_output_tokens or config.routing.max_output_tokens


def context_tokens(request: RouteRequest, config: ACOConfig) -> int:
    """Tokens the call needs in a tier's context: prompt estimate + the output cap."""
    return estimate_tokens(request.text) + output_cap(request, config)


def tiers_that_fit(config: ACOConfig, request: RouteRequest) -> set[int]:
    """The tiers whose ``max_context`` holds ``context_tokens(request, config)``."""
    need = context_tokens(request, config)
    return {n for n in TIER_NUMBERS if need <= config.tier(n).max_context}


def forced_tier(request: RouteRequest, config: ACOConfig) -> int | None:
    """The tier ``force_tier`` / ``force_model`` names, or None when the call is not forced.

    Raises:
        RoutingError: ``force_model`` names no tier of the config.
    """
    c = request.constraints
    if c.force_model is not None:
        tier = config.tier_of_model(c.force_model)
        if tier is None:
            raise RoutingError(
                f"force_model={c.force_model!r} names no tier: use one of "
                + ", ".join(config.tier(n).model_id for n in TIER_NUMBERS)
            )
        return tier
    return c.force_tier


def needs_assessment(request: RouteRequest) -> bool:
    """False for a forced call: the router's assessment would not change its tier."""
    c = request.constraints
    return c.force_tier is None and c.force_model is None


def context_error(request: RouteRequest, config: ACOConfig, tiers: list[int]) -> str:
    need = context_tokens(request, config)
    sizes = ", ".join(f"tier {n}: {config.tier(n).max_context}" for n in tiers)
    out = output_cap(request, config)
    return (
        f"the prompt (~{need - out} tokens) plus the output cap ({out} tokens) needs ~{need} "
        f"tokens of context, more than {sizes} (max_context): shorten the prompt or its "
        "history, lower max_tokens, or configure a tier with a larger max_context"
    )
