"""Replay tiers (``provider: replay``): a real model's recorded answers, usage and cost.

The model and the recording live in ``aco_langchain.providers.replay``; this adapter only
connects them to the registry: availability (the recording files exist), a per-prompt miss
(the prompt is not in the recording), and the recorded cost the ledger settles.

Example:
    ```python
    adapter_for("replay").availability(spec, cfg)   # 'replay recording x.csv not found'
    ```
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aco_langchain.config import ACOConfig, TierSpec
from aco_langchain.providers.adapters.base import ProviderAdapter

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import BaseMessage


class ReplayAdapter(ProviderAdapter):
    """``replay``: ``ReplayChatModel`` over the tier's ``recording``."""

    answers_per_prompt = True

    def availability(self, spec: TierSpec, config: ACOConfig) -> str | None:
        from aco_langchain.providers.replay import replay_availability

        return replay_availability(spec)

    def build(self, spec: TierSpec, config: ACOConfig) -> BaseChatModel:
        from aco_langchain.providers.replay import build_replay_model

        return build_replay_model(spec)

    def miss_reason(self, model: BaseChatModel, prompt: str | Sequence[BaseMessage]) -> str | None:
        from aco_langchain.providers.replay import last_human_text

        text = prompt if isinstance(prompt, str) else last_human_text(prompt)
        reason: str | None = model.miss_reason(text)  # type: ignore[attr-defined]
        return reason

    def recorded_prompt_cost(self, model: BaseChatModel, prompt: str) -> float | None:
        found = model.store.lookup(prompt, model.model)  # type: ignore[attr-defined]
        return None if found is None else float(found.cost_usd)

    def recorded_cost(self, message: Any) -> float | None:
        from aco_langchain.providers.replay import recorded_cost

        return recorded_cost(message)


__all__ = ["ReplayAdapter"]
