"""Send recorded prompts through the real ``ACORouterChatModel`` on replay tiers.

Every prompt is one run (its own run key) through the router, the policy, budget holds,
settlement and the ledger; its answer is the recorded answer of the tier's model, and
whether it was right is the recording's outcome. What each prompt cost is read back from
the answer's metadata, and the ledger's total for the replay's runs is read from the ledger.

Usage::

    from aco_langchain.replay.runner import replay_prompts, replay_tier_models
    cfg = load_config("examples/replay-config.yaml")
    result = replay_prompts(prompts, cfg, ledger_url="memory://")
    result.choices[0].tier, result.ledger_total_usd
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aco_langchain.config import TIER_NUMBERS, ACOConfig
from aco_langchain.errors import ACOError, ConfigError
from aco_langchain.replay.figures import Choice
from aco_langchain.replay.recording import RecordedPrompt

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage

    from aco_langchain.chat.model import ACORouterChatModel

logger = logging.getLogger(__name__)

_ROLES = {"user": "human", "human": "human", "assistant": "ai", "ai": "ai", "system": "system"}


def replay_tier_models(config: ACOConfig) -> dict[int, str]:
    """Tier -> the recorded model it plays, for the config's replay tiers.

    Raises:
        ConfigError: the config has no replay tier.
    """
    out = {
        n: config.tier(n).provider_model
        for n in TIER_NUMBERS
        if config.tier(n).provider == "replay"
    }
    if not out:
        raise ConfigError(
            "the config has no replay tier: give tiers {provider: replay, recording: PATH, "
            "model: NAME} (see examples/replay-config.yaml)"
        )
    return out


def to_messages(prompt: RecordedPrompt) -> list[BaseMessage]:
    """The recorded prompt as LangChain messages."""
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    kinds = {"human": HumanMessage, "ai": AIMessage, "system": SystemMessage}
    return [kinds[_ROLES.get(role, "human")](content) for role, content in prompt.messages]


@dataclass
class ReplayRun:
    """The choices of a replay and what the ledger recorded for its runs."""

    choices: list[Choice]
    ledger_total_usd: float
    run_prefix: str
    unscored: int = 0
    """Answers from a tier with no recorded outcome (a live tier): counted wrong."""


def _choice(prompt: RecordedPrompt, run_key: str, msg: BaseMessage) -> tuple[Choice, bool]:
    meta = msg.response_metadata.get("aco") or {}
    replay = msg.response_metadata.get("replay")
    scored = isinstance(replay, dict)
    score = replay.get("score") if isinstance(replay, dict) else None
    return (
        Choice(
            id=prompt.id,
            tier=meta.get("tier"),
            model=str(msg.response_metadata.get("model_name") or meta.get("model_id")),
            cost_usd=float(meta.get("cost_usd") or 0.0),
            correct=score is not None and float(score) >= 0.5,
            reason=str(meta.get("reason") or ""),
            run_key=run_key,
        ),
        scored,
    )


def replay_prompts(
    prompts: Sequence[RecordedPrompt],
    config: ACOConfig,
    *,
    ledger_url: str | None = None,
    progress: Callable[[int], None] | None = None,
    llm: ACORouterChatModel | None = None,
) -> ReplayRun:
    """Send each prompt through ``ACORouterChatModel`` (one run per prompt).

    Args:
        prompts: the recorded prompts to send.
        config: the tiers (replay tiers answer from their recordings), router, policy.
        ledger_url: the ledger to record into; None: a private in-memory one.
        progress: called with 1 after each prompt.
        llm: the chat model to use (default: one built from ``config`` and ``ledger_url``).

    Returns:
        The per-prompt choices and the ledger's total for this replay's runs.

    Example:
        ```python
        run = replay_prompts(open_recording("sample.csv").prompts()[:20], cfg)
        sum(c.cost_usd for c in run.choices) == run.ledger_total_usd
        ```
    """
    if llm is None:
        from aco_langchain.chat.model import ACORouterChatModel
        from aco_langchain.spend.ledger import open_ledger

        # A replay measures the tiers' answers: never from a response cache.
        ledger = open_ledger(ledger_url or "memory://", config)
        llm = ACORouterChatModel(config=config, ledger=ledger, cache=False)
    prefix = f"replay-{uuid.uuid4().hex[:8]}-"
    started = time.time() - 1.0
    choices: list[Choice] = []
    unscored = 0
    for prompt in prompts:
        run_key = prefix + prompt.id
        try:
            msg = llm.invoke(to_messages(prompt), config={"configurable": {"aco_run_id": run_key}})
        except ACOError as err:  # no tier could answer: the row says why (and costs nothing)
            logger.warning("replay %s: %s", prompt.id, err)
            spent = llm.spend_ledger.spent(run_key)
            choices.append(Choice(prompt.id, None, None, spent, False, "", run_key, error=str(err)))
        else:
            choice, scored = _choice(prompt, run_key, msg)
            unscored += 0 if scored else 1
            choices.append(choice)
            if scored:  # the recording's outcome is this run's observed outcome
                llm.outcomes.record(run_key, success=choice.correct, source="replay")
        if progress is not None:
            progress(1)
    rows = llm.spend_ledger.records(since=started)
    total = sum(r.cost_usd for r in rows if r.run_key.startswith(prefix))
    return ReplayRun(choices, float(total), prefix, unscored)


def knob_frontier(
    prompts: Sequence[RecordedPrompt],
    config: ACOConfig,
    targets: Sequence[float],
) -> list[dict[str, Any]]:
    """The router's decisions (policy included, no call) at each quality target, scored
    from the recording: the cost-quality curve of the knob.

    Returns:
        One ``{"quality_target", "accuracy", "cost_usd_mean"}`` per target.
    """
    from aco_langchain.chat.planner import build_route_request
    from aco_langchain.routing import get_router, route

    models = replay_tier_models(config)
    router = get_router(config)
    requests = [build_route_request(to_messages(p), {}, 0) for p in prompts]
    out = []
    for q in targets:
        cfg = config.model_copy(
            update={"routing": config.routing.model_copy(update={"quality_target": q})}
        )
        ok, cost = 0, 0.0
        for p, req in zip(prompts, requests, strict=True):
            tier = route(req, cfg, router=router).tier
            ans = p.answers.get(models.get(tier, ""))
            if ans is not None:
                ok += ans.correct
                cost += ans.cost_usd
        n = max(1, len(prompts))
        out.append({"quality_target": q, "accuracy": ok / n, "cost_usd_mean": cost / n})
    return out
