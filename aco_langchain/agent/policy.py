"""The agent's policy and per-run settings (LangGraph ``context`` or ``configurable``).

``AgentPolicy`` holds the options of one agent (budget, risk, verifier, tool tiers, approval,
escalations); ``run_settings`` reads what a single invocation overrides: LangGraph's
``context`` first (``context_schema=ACOContext``), then the older ``configurable`` keys
``aco_task_risk`` / ``aco_max_budget`` / ``aco_run_id``.

Example:
    ```python
    from aco_langchain.agent.policy import AgentPolicy, run_settings

    policy = AgentPolicy(config=cfg, max_budget=0.5)
    policy.with_settings(run_settings({"task_risk": "high"}, None)).task_risk   # 'high'
    ```
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from typing_extensions import TypedDict

from aco_langchain.config import TIER_NUMBERS, ACOConfig
from aco_langchain.errors import ConfigError
from aco_langchain.routing.policy import RISK_FLOORS

Risk = Literal["low", "medium", "high", "critical"]
ToollessPolicy = Literal["skip", "text"]


class RunSettings(TypedDict, total=False):
    """Per-invocation settings (LangGraph ``context``, or the older ``configurable`` keys).

    Example:
        ```python
        graph.invoke(inputs, context={"task_risk": "high", "max_budget": 0.5})
        graph.invoke(inputs, {"configurable": {"aco_task_risk": "high"}})   # older form
        ```
    """

    task_risk: Risk
    max_budget: float
    run_id: str


#: The older ``configurable`` key of each setting.
CONFIGURABLE_KEYS: dict[str, str] = {
    "task_risk": "aco_task_risk",
    "max_budget": "aco_max_budget",
    "run_id": "aco_run_id",
}


def run_settings(context: Any, configurable: Mapping[str, Any] | None) -> RunSettings:
    """The run's settings: the LangGraph ``context`` wins over the ``configurable`` keys.

    Args:
        context: ``Runtime.context`` (a mapping or an object with the setting attributes, e.g.
            ``ACOContext``), or None.
        configurable: ``RunnableConfig["configurable"]`` (``aco_task_risk``, ...), or None.

    Returns:
        The settings given (absent ones are left out).

    Example:
        ```python
        run_settings({"task_risk": "high"}, {"aco_max_budget": 0.2})
        # {'max_budget': 0.2, 'task_risk': 'high'}
        ```
    """
    out: dict[str, Any] = {}
    conf = configurable or {}
    for name, key in CONFIGURABLE_KEYS.items():
        if conf.get(key) is not None:
            out[name] = conf[key]
        getter = (
            context.get if isinstance(context, Mapping) else lambda n: getattr(context, n, None)
        )
        value = getter(name)
        if value is not None:
            out[name] = value
    return RunSettings(**out)  # type: ignore[typeddict-item]


@dataclass(frozen=True)
class ACOContext:
    """LangGraph run context of the ACO agents (``context_schema``); every field optional.

    Example:
        ```python
        graph = create_aco_agent(cfg, tools)
        graph.invoke({"messages": [("user", "Fix it")]}, context=ACOContext(task_risk="high"))
        ```
    """

    task_risk: Risk | None = None
    """Risk of this run (risk floors, verification bars, approval)."""
    max_budget: float | None = None
    """USD for this run."""
    run_id: str | None = None
    """Ledger key of this run (default: one per turn)."""


@dataclass(frozen=True)
class AgentPolicy:
    """The settings of one agent's controls.

    Example:
        ```python
        AgentPolicy(config=cfg, max_budget=0.5, task_risk="high", verifier_tier=4)
        ```
    """

    config: ACOConfig = field(default_factory=ACOConfig)
    max_budget: float | None = None
    """USD for one run; None: ``config.routing.max_cost_per_task``."""
    task_risk: Risk = "medium"
    verifier_tier: int | None = None
    """Tier of the verifier; None: one above the answering tier, at least 3."""
    toolless_tiers: ToollessPolicy = "skip"
    """A routed tier without tool calling: ``skip`` moves up to one with it; ``text`` lets it
    answer in text (no tools bound for that step)."""
    human_approval: bool = False
    """Interrupt for a human's approval before critical tool calls (needs a checkpointer)."""
    max_escalations: int = 1
    """Extra calls, each one tier up, when an answer is empty or its tool call unparseable."""
    verify_answers: bool = True
    """Run the verification gate on final answers."""
    tool_tiers: frozenset[int] | None = None
    """Tiers that can call tools; None: detect (a tier model overriding ``bind_tools``, or
    the tier spec's ``tools`` capability)."""

    def __post_init__(self) -> None:
        """Check every option up front (a wrong one is a clear error, not a late surprise)."""
        if self.max_budget is not None and self.max_budget < 0:
            raise ConfigError(f"max_budget must be >= 0, got {self.max_budget}")
        if self.max_escalations < 0:
            raise ConfigError(f"max_escalations must be >= 0, got {self.max_escalations}")
        if self.verifier_tier is not None and self.verifier_tier not in TIER_NUMBERS:
            raise ConfigError(f"verifier_tier must be 1 to 5, got {self.verifier_tier}")
        if self.task_risk not in RISK_FLOORS:
            raise ConfigError(
                f"task_risk must be low, medium, high or critical, not {self.task_risk!r}"
            )
        if self.toolless_tiers not in ("skip", "text"):
            raise ConfigError(
                f"toolless_tiers must be 'skip' or 'text', not {self.toolless_tiers!r}"
            )
        if self.tool_tiers is not None and not set(self.tool_tiers) <= set(TIER_NUMBERS):
            raise ConfigError(f"tool_tiers must be tiers 1 to 5, got {sorted(self.tool_tiers)}")

    @property
    def budget(self) -> float:
        """The run's budget in USD."""
        if self.max_budget is None:
            return self.config.routing.max_cost_per_task
        return self.max_budget

    def with_settings(self, settings: RunSettings) -> AgentPolicy:
        """This policy with the run's ``task_risk`` / ``max_budget`` settings.

        Args:
            settings: From ``run_settings``.

        Returns:
            The same policy when nothing changes, else a copy.

        Raises:
            ConfigError: A setting has a wrong value (names the ``configurable`` key too).

        Example:
            ```python
            policy.with_settings({"task_risk": "high"}).task_risk   # 'high'
            ```
        """
        risk = settings.get("task_risk", self.task_risk)
        budget = settings.get("max_budget", self.max_budget)
        if risk == self.task_risk and budget == self.max_budget:
            return self
        if risk not in RISK_FLOORS:
            raise ConfigError(
                f"aco_task_risk (context task_risk) must be low, medium, high or critical, "
                f"not {risk!r}"
            )
        return dataclasses.replace(self, task_risk=risk, max_budget=budget)

    def with_overrides(self, configurable: Mapping[str, Any] | None) -> AgentPolicy:
        """This policy with the older ``configurable`` keys (``aco_task_risk``, ...).

        Args:
            configurable: ``RunnableConfig["configurable"]``.

        Returns:
            ``with_settings(run_settings(None, configurable))``.

        Example:
            ```python
            policy.with_overrides({"aco_max_budget": 0.1}).budget   # 0.1
            ```
        """
        return self.with_settings(run_settings(None, configurable))


def takes_tools(registry: Any, policy: AgentPolicy, tier: int) -> bool:
    """Can ``tier`` call tools (``policy.tool_tiers`` first, else the tier registry's view)?

    Args:
        registry: The router model's ``TierRegistry``.
        policy: The agent's policy.
        tier: A tier number.

    Returns:
        Whether tools can be bound to that tier.

    Example:
        ```python
        takes_tools(llm.registry, AgentPolicy(tool_tiers=frozenset({3})), 2)   # False
        ```
    """
    if policy.tool_tiers is not None:
        return tier in policy.tool_tiers
    return bool(registry.takes_tools(tier))


__all__ = [
    "CONFIGURABLE_KEYS",
    "ACOContext",
    "AgentPolicy",
    "Risk",
    "RunSettings",
    "ToollessPolicy",
    "run_settings",
    "takes_tools",
]
