"""The parts an ``ACORouterChatModel`` composes, built once per model: the tier registry, the
router, the budget gateway over the ledger, the tiers' health, the planner and the tier caller
(with its reporter). A plain holder (:class:`Runtime`), because pydantic private-attribute
access costs ~1 us each on the hot path.

Example:
    ```python
    rt = build_runtime(config, RuntimeSettings(ledger=open_ledger("memory://")))
    rt.planner, rt.caller, rt.gateway.spent("job-7")
    ```
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage

from aco_langchain.chat.caller import TierCaller
from aco_langchain.chat.ops import RunNotes
from aco_langchain.chat.planner import Planner
from aco_langchain.chat.reporter import Reporter
from aco_langchain.config import ACOConfig
from aco_langchain.errors import LedgerError
from aco_langchain.providers.faults import TierHealth
from aco_langchain.providers.tiers import TierRegistry
from aco_langchain.routing import Router
from aco_langchain.routing import get_router as _default_router
from aco_langchain.spend.gateway import BudgetGateway
from aco_langchain.spend.ledger import SpendLedger, open_ledger

logger = logging.getLogger(__name__)


@dataclass
class Runtime:
    """The parts a router model composes; one concept each, and no part knows the model."""

    registry: TierRegistry
    router: Router
    gateway: BudgetGateway
    health: TierHealth
    planner: Planner
    caller: TierCaller
    identifying: dict[str, Any]
    token: object = field(default_factory=object)
    """This instance's key for the run of its latest call (``chat/runs.py``)."""
    refresh: Callable[[], Awaitable[None]] | None = None
    """What an async call awaits before planning so the router reads nothing on the loop
    (an online router's ``arefresh``); None for routers that do no I/O."""


@dataclass(frozen=True)
class RuntimeSettings:
    """The router model's objects its parts are built from (read once, at construction);
    every setting (retries, deadline, cascade, cooldown) is read from the config."""

    tier_models: Mapping[int, BaseChatModel] = field(default_factory=dict)
    router: Any = None
    ledger: Any = None
    model_name: str = "aco-router"


def build_runtime(config: ACOConfig, settings: RuntimeSettings) -> Runtime:
    """Build a model's parts.

    Args:
        config: the model's config.
        settings: its other fields.

    Returns:
        The parts, wired together (the registry and health shared by planner and caller).

    Raises:
        LedgerError: ``settings.ledger`` is neither a URL nor a ledger.
    """
    router = settings.router if settings.router is not None else _default_router(config)
    registry = TierRegistry(config, settings.tier_models)
    registry.warm()  # provider imports now, not inside the first call's deadline
    rs = config.routing
    health = TierHealth(cooldown_after=rs.cooldown_after, cooldown_s=rs.cooldown_s)
    return Runtime(
        registry=registry,
        router=router,
        gateway=BudgetGateway(ledger_of(settings.ledger, config)),
        health=health,
        planner=Planner(config, registry, router),
        caller=TierCaller(
            config,
            registry,
            Reporter(config, registry),
            health,
            retries=rs.max_retries,
            base_delay_s=rs.retry_base_delay_s,
            notes=run_notes(router, config),
        ),
        identifying={
            "model_name": settings.model_name,
            "tiers": {n: config.tier(n).model_id for n in range(1, 6)},
            "router": getattr(router, "name", type(router).__name__),
            "cascade": config.cascade.enabled,
        },
        refresh=getattr(router, "arefresh", None),
    )


def run_notes(router: Any, config: ACOConfig) -> RunNotes | None:
    """Where online learning notes each routed call's cluster and tier: the store the online
    router reads (else the config's ledger database); None when ``learning.online`` is off
    (then calls pay nothing for it) or the store cannot be opened (said once, here)."""
    if not config.learning.online:
        return None
    store = getattr(router, "store", None)
    if hasattr(store, "note") and hasattr(store, "anote"):
        return store
    from aco_langchain.routing.online_store import open_learning

    try:
        return open_learning(config)
    except LedgerError as err:
        logger.warning("online learning: calls are not noted (%s)", err)
        return None


def unavailable(rt: Runtime, messages: Sequence[BaseMessage]) -> dict[int, str]:
    """{tier: why} for tiers that cannot be called now (credentials, server, cooldown) or
    cannot answer these messages (a replay tier without a recorded answer)."""
    return {**rt.registry.unavailable(messages), **rt.health.cooling()}


def ledger_of(value: Any, config: ACOConfig) -> SpendLedger:
    """The model's ledger from its ``ledger`` field: an instance; None (``$ACO_LEDGER_URL``,
    the config's ``ledger.url``, the default); or a URL, the deprecated spelling (moved into
    ``ledger.url`` by ``config_deprecations``), which still wins over the env for a release.

    Raises:
        LedgerError: ``value`` is neither.
    """
    if value is None or isinstance(value, str):
        return open_ledger(value, config)
    if not isinstance(value, SpendLedger):
        raise LedgerError(
            f"ledger={type(value).__name__} is not a SpendLedger (hold/settle/release/...): "
            "set the config's ledger.url (sqlite:///path, postgresql://...) or pass a ledger "
            "from open_ledger(url)"
        )
    return value


__all__ = [
    "Runtime",
    "RuntimeSettings",
    "build_runtime",
    "ledger_of",
    "run_notes",
    "unavailable",
]
