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
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool
from langgraph.graph import END, START, StateGraph

from aco_langchain.config import ACOConfig, config_from_dict, load_config
from aco_langchain.integrations.langgraph.control import AgentPolicy, Risk, ToollessPolicy
from aco_langchain.integrations.langgraph.nodes import ACOAgentNodes, StepActionFn
from aco_langchain.integrations.langgraph.state import ACOAgentState

ConfigOrModel = ACOConfig | str | Path | Mapping[str, Any] | BaseChatModel | None


def resolve_router_model(
    config_or_model: ConfigOrModel = None,
    tier_models: Mapping[int, BaseChatModel] | None = None,
) -> Any:
    """An ``ACORouterChatModel`` from a config, a YAML path, a dict or a ready model.

    Usage::

        llm = resolve_router_model("config.yaml", {1: local_llm})
    """
    from aco_langchain.chat.model import ACORouterChatModel

    if isinstance(config_or_model, ACORouterChatModel):
        if tier_models:
            raise ValueError(
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


def build_aco_agent_graph(nodes: ACOAgentNodes) -> StateGraph:
    """The uncompiled agent graph over ``nodes`` (add your own nodes, then compile).

    Usage::

        builder = build_aco_agent_graph(ACOAgentNodes(llm, tools, policy))
        graph = builder.compile(checkpointer=InMemorySaver())
    """
    builder = StateGraph(ACOAgentState)
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
    builder.add_conditional_edges("tool_gate", nodes.after_tool_gate, ["tools", "doom"])
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
    checkpointer: Any = None,
    store: Any = None,
    name: str = "aco_agent",
    debug: bool = False,
) -> Any:
    """A compiled tool-calling agent graph with per-step routing, gates and doom stop.

    ``config_or_model``: an ``ACOConfig``, YAML path, dict, or an ``ACORouterChatModel``
    (``tier_models`` go into a new router model). ``max_budget`` (USD per run, default
    ``routing.max_cost_per_task``) and ``task_risk`` can be overridden per invocation with
    ``configurable`` keys ``aco_max_budget`` / ``aco_task_risk``. ``human_approval``: None
    turns it on when a checkpointer is given (an interrupt needs one). ``tool_tiers``: the
    tiers that can call tools (default: detected); ``toolless_tiers`` says what a step routed
    to another tier does (``skip`` up to one that can, or answer in ``text``).

    Usage::

        graph = create_aco_agent(cfg, [search], tier_models=tiers, max_budget=0.5)
        out = graph.invoke({"messages": [("user", "Find the release date")]})
        out["messages"][-1].content, out["aco_events"]
    """
    llm = resolve_router_model(config_or_model, tier_models)
    if max_budget is not None and max_budget < 0:
        raise ValueError(f"max_budget must be >= 0, got {max_budget}")
    if max_escalations < 0:
        raise ValueError(f"max_escalations must be >= 0, got {max_escalations}")
    if verifier_tier is not None and verifier_tier not in range(1, 6):
        raise ValueError(f"verifier_tier must be 1 to 5, got {verifier_tier}")
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
def open_checkpointer(url: str | None = None) -> Iterator[Any]:
    """A LangGraph checkpointer from a URL: ``memory`` (default), a SQLite path or
    ``sqlite:///path``, or ``postgresql://...`` (tables are created on first use).

    Usage::

        with open_checkpointer("postgresql://postgres@127.0.0.1:5432/test") as saver:
            graph = create_aco_agent(cfg, tools, checkpointer=saver)
    """
    if not url or url == "memory":
        from langgraph.checkpoint.memory import InMemorySaver

        yield InMemorySaver()
        return
    if url.startswith(("postgres://", "postgresql://")):
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
    "build_aco_agent_graph",
    "create_aco_agent",
    "open_checkpointer",
    "resolve_router_model",
]
