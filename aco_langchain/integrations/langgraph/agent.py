"""``create_aco_agent``: a compiled tool-calling LangGraph agent with the ACO controls.

The graph::

    START -> start -> doom -> agent -> tool_gate -> tools -> doom -> agent ...
                        |       |          \\-> doom (all calls skipped)
                        v       \\-> verify_gate -> verifier -> END (PASS) / doom (FAIL)
                       END            \\-> END (no verification needed)

Every step's tier comes from ``PerStepRouter``; the doom detector ends a run that is out of
budget, repeating a failing tool call, making no progress or over its step limit, with a
final AIMessage giving the reason. Critical tool calls wait for a human (``interrupt``) when
``human_approval`` is on (default: when a checkpointer is given); resume with
``graph.invoke(Command(resume=True), config)`` (or ``False`` / ``{"approved": False,
"reason": "..."}`` to reject).

Usage::

    from aco_langchain.integrations.langgraph import create_aco_agent
    graph = create_aco_agent(ACOConfig(), [read_file, run_tests], checkpointer=InMemorySaver())
    graph.invoke({"messages": [("user", "Fix the failing test")]},
                 {"configurable": {"thread_id": "t1"}})
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.store.base import BaseStore
from langgraph.types import Checkpointer

from aco_langchain.agent.engine import StepActionFn
from aco_langchain.agent.policy import ACOContext, AgentPolicy, Risk, ToollessPolicy
from aco_langchain.config import ACOConfig, config_from_dict, load_config
from aco_langchain.errors import ConfigError
from aco_langchain.integrations.langgraph.nodes import ACOAgentNodes
from aco_langchain.integrations.langgraph.state import ACOAgentState

if TYPE_CHECKING:
    from aco_langchain.chat.model import ACORouterChatModel

ConfigOrModel = ACOConfig | str | Path | Mapping[str, Any] | BaseChatModel | None
#: The compiled ACO agent graph's type.
ACOAgentGraph = CompiledStateGraph[ACOAgentState, ACOContext, ACOAgentState, ACOAgentState]


def resolve_router_model(
    config_or_model: ConfigOrModel = None,
    tier_models: Mapping[int, BaseChatModel] | None = None,
) -> ACORouterChatModel:
    """An ``ACORouterChatModel`` from a config, a YAML path, a dict or a ready model.

    Args:
        config_or_model: An ``ACOConfig``, a YAML path, a config dict, a ready
            ``ACORouterChatModel``, or None for the default config.
        tier_models: Chat models per tier for a new router model.

    Returns:
        The router model.

    Raises:
        ConfigError: ``tier_models`` given with a ready router model.
        TypeError: ``config_or_model`` is another chat model or of an unknown type.

    Example:
        ```python
        llm = resolve_router_model("config.yaml", {1: local_llm})
        ```
    """
    from aco_langchain.chat.model import ACORouterChatModel

    if isinstance(config_or_model, ACORouterChatModel):
        if tier_models:
            raise ConfigError(
                "tier_models= was given with a ready ACORouterChatModel: pass the tier models "
                "to ACORouterChatModel(tier_models=...) instead"
            )
        return config_or_model
    if isinstance(config_or_model, BaseChatModel):
        raise TypeError(
            f"{type(config_or_model).__name__} is not an ACORouterChatModel: pass an ACOConfig "
            "and tier_models={n: model} to route between your models"
        )
    if config_or_model is None or isinstance(config_or_model, (str, Path)):
        cfg = load_config(config_or_model)
    elif isinstance(config_or_model, ACOConfig):
        cfg = config_or_model
    elif isinstance(config_or_model, Mapping):
        cfg = config_from_dict(dict(config_or_model))
    else:
        raise TypeError(
            f"config_or_model must be an ACOConfig, a YAML path, a dict or an "
            f"ACORouterChatModel, not {type(config_or_model).__name__}"
        )
    return ACORouterChatModel(config=cfg, tier_models=dict(tier_models or {}))


def build_aco_agent_graph(
    nodes: ACOAgentNodes,
) -> StateGraph[ACOAgentState, ACOContext, ACOAgentState, ACOAgentState]:
    """The uncompiled agent graph over ``nodes`` (add your own nodes, then compile).

    Args:
        nodes: The agent's nodes.

    Returns:
        The ``StateGraph`` (state ``ACOAgentState``, run context ``ACOContext``).

    Example:
        ```python
        builder = build_aco_agent_graph(ACOAgentNodes(llm, tools, policy))
        graph = builder.compile(checkpointer=InMemorySaver())
        ```
    """
    builder = StateGraph(ACOAgentState, context_schema=ACOContext)
    builder.add_node("start", nodes.start)
    builder.add_node("doom", nodes.doom)
    builder.add_node("agent", nodes.agent)
    builder.add_node("tool_gate", nodes.tool_gate)
    builder.add_node("tools", nodes.tools_node)
    builder.add_node("verify_gate", nodes.verify_gate)
    builder.add_node("verifier", nodes.verifier)
    builder.add_edge(START, "start")
    builder.add_edge("start", "doom")
    builder.add_conditional_edges("doom", nodes.after_doom, ["agent", END])
    builder.add_conditional_edges("agent", nodes.after_agent, ["tool_gate", "verify_gate", END])
    builder.add_conditional_edges("tool_gate", nodes.after_tool_gate, ["tools", "doom"])  # type: ignore[arg-type]
    builder.add_edge("tools", "doom")
    builder.add_conditional_edges("verify_gate", nodes.after_verify_gate, ["verifier", END])
    builder.add_conditional_edges("verifier", nodes.after_verifier, ["doom", END])
    return builder


def create_aco_agent(
    config_or_model: ConfigOrModel = None,
    tools: Sequence[BaseTool | Callable[..., Any]] = (),
    *,
    tier_models: Mapping[int, BaseChatModel] | None = None,
    system_prompt: str | None = None,
    max_budget: float | None = None,
    task_risk: Risk = "medium",
    verifier_tier: int | None = None,
    verify_answers: bool = True,
    toolless_tiers: ToollessPolicy = "skip",
    tool_tiers: Iterable[int] | None = None,
    human_approval: bool | None = None,
    max_escalations: int = 1,
    step_action: StepActionFn | None = None,
    checkpointer: Checkpointer = None,
    store: BaseStore | None = None,
    name: str = "aco_agent",
    debug: bool = False,
) -> ACOAgentGraph:
    """A compiled tool-calling agent graph with per-step routing, gates and doom stop.

    Tools run in langgraph's own ``ToolNode``: tools with ``InjectedState``,
    ``InjectedStore`` or ``ToolRuntime`` arguments and tools returning ``Command`` work.

    Args:
        config_or_model: An ``ACOConfig``, YAML path, dict, or an ``ACORouterChatModel``.
        tools: LangChain tools or plain functions.
        tier_models: Chat models per tier (for a new router model).
        system_prompt: Prepended when the conversation has no system message.
        max_budget: USD per run (default ``routing.max_cost_per_task``).
        task_risk: ``low``, ``medium``, ``high`` or ``critical``.
        verifier_tier: The verifier's tier (default one above the answer's, at least 3).
        verify_answers: Run the verification gate on final answers.
        toolless_tiers: What a step routed to a tier without tool calling does: ``skip`` up
            to one that can, or answer in ``text``.
        tool_tiers: The tiers that can call tools (default: detected).
        human_approval: Interrupt before critical tool calls; None: on when a checkpointer
            is given (an interrupt needs one).
        max_escalations: Extra calls, one tier up each, on an unusable answer.
        step_action: ``(messages, request) -> action`` for per-step routing.
        checkpointer: A LangGraph checkpointer (threads, interrupts).
        store: A LangGraph store (for ``InjectedStore`` tools).
        name: The graph's name.
        debug: LangGraph debug mode.

    Returns:
        The compiled graph. Per invocation, ``context=ACOContext(task_risk=..., max_budget=...,
        run_id=...)`` (or a dict) overrides the settings; the older ``configurable`` keys
        ``aco_task_risk`` / ``aco_max_budget`` / ``aco_run_id`` still work.

    Raises:
        ConfigError: An option has a wrong value (``max_budget < 0``, ``verifier_tier=9``...).
        TypeError: ``config_or_model`` is not a config or an ``ACORouterChatModel``.

    Example:
        ```python
        graph = create_aco_agent(cfg, [search], tier_models=tiers, max_budget=0.5)
        out = graph.invoke({"messages": [("user", "Find the release date")]},
                           context={"task_risk": "high"})
        out["messages"][-1].content, out["aco_events"]
        ```
    """
    llm = resolve_router_model(config_or_model, tier_models)
    policy = AgentPolicy(
        config=llm.config,
        max_budget=max_budget,
        task_risk=task_risk,
        verifier_tier=verifier_tier,
        toolless_tiers=toolless_tiers,
        human_approval=(checkpointer is not None) if human_approval is None else human_approval,
        max_escalations=max_escalations,
        verify_answers=verify_answers,
        tool_tiers=None if tool_tiers is None else frozenset(tool_tiers),
    )
    nodes = ACOAgentNodes(llm, tools, policy, system_prompt=system_prompt, step_action=step_action)
    return build_aco_agent_graph(nodes).compile(
        checkpointer=checkpointer, store=store, name=name, debug=debug
    )


@contextlib.contextmanager
def open_checkpointer(url: str | None = None) -> Iterator[BaseCheckpointSaver[Any]]:
    """A LangGraph checkpointer from a URL (tables are created on first use).

    Args:
        url: ``memory`` (default), a SQLite path or ``sqlite:///path``, or
            ``postgresql://...``; the spend ledger's URL can be given as is (one database
            for budgets and checkpoints).

    Yields:
        The checkpointer, open for the ``with`` block.

    Raises:
        ImportError: The checkpointer's package is not installed (names the extra).

    Example:
        ```python
        with open_checkpointer("postgresql://postgres@127.0.0.1:5432/test") as saver:
            graph = create_aco_agent(cfg, tools, checkpointer=saver)
        ```
    """
    if not url or url in ("memory", "memory://"):
        from langgraph.checkpoint.memory import InMemorySaver

        yield InMemorySaver()
        return
    if url.startswith(("postgres://", "postgresql://", "postgresql+psycopg://")):
        from aco_langchain.spend.ledger.url import parse_ledger_url

        # The spend ledger's URL works too: its table_prefix= is the ledger's, not libpq's.
        url = parse_ledger_url(url).dsn or url
        try:
            from langgraph.checkpoint.postgres import PostgresSaver
        except ImportError as err:  # pragma: no cover - depends on the install
            raise ImportError(
                "PostgresSaver needs langgraph-checkpoint-postgres: pip install "
                "'aco-langchain[agents]'"
            ) from err
        with PostgresSaver.from_conn_string(url) as saver:
            saver.setup()
            yield saver
        return
    path = url.removeprefix("sqlite:///").removeprefix("sqlite://")
    try:
        from langgraph.checkpoint.sqlite import SqliteSaver
    except ImportError as err:  # pragma: no cover
        raise ImportError(
            "SqliteSaver needs langgraph-checkpoint-sqlite: pip install 'aco-langchain[agents]'"
        ) from err
    with SqliteSaver.from_conn_string(path) as saver:
        yield saver


__all__ = [
    "ACOAgentGraph",
    "ConfigOrModel",
    "build_aco_agent_graph",
    "create_aco_agent",
    "open_checkpointer",
    "resolve_router_model",
]
