"""Seed 3's four strategies as LangGraph graphs, and a graph that classifies and dispatches.

- ``simple``: one call; the router picks the tier (local-first).
- ``moderate``: plan, then execute (a sequential chain).
- ``complex``: parallel specialists (research, code, review by default) via ``Send``, then a
  merge call.
- ``critical``: specialists, a draft, a critic ensemble in parallel, optional human approval
  (``interrupt``), then the final answer (or a refusal when critics or the human reject).
- ``create_strategy_graph``: classifies the task's complexity with the router
  (``Assessment.complexity``) and runs the matching strategy as a subgraph.

Every model call goes through one ``ACORouterChatModel`` with the role's tier
(``role_tiers``; None lets the router choose) and is recorded in ``aco_events``; the calls
carry ``aco_role`` / ``aco_tier`` metadata for the trace callback.

Usage::

    from aco_langchain.integrations.langgraph import create_strategy_graph
    graph = create_strategy_graph(ACOConfig(), tier_models=tiers)
    out = graph.invoke({"task": "Design a rollout plan for the billing service"})
    out["strategy"], out["answer"]
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langchain_core.callbacks.manager import adispatch_custom_event, dispatch_custom_event
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Checkpointer, Send, interrupt

from aco_langchain.agent.checks import approval_granted
from aco_langchain.agent.events import call_cost
from aco_langchain.chat.messages import message_text
from aco_langchain.integrations.langgraph.agent import ConfigOrModel, resolve_router_model
from aco_langchain.integrations.langgraph.state import SpecialistInput, StrategyState
from aco_langchain.tracing.names import EVENT_VERDICT, VERIFIER_TAG

#: An uncompiled strategy graph.
StrategyBuilder = StateGraph[StrategyState, None, StrategyState, StrategyState]
#: A compiled strategy graph (input and output: ``StrategyState``).
StrategyGraph = CompiledStateGraph[StrategyState, None, StrategyState, StrategyState]

logger = logging.getLogger(__name__)

STRATEGIES = ("simple", "moderate", "complex", "critical")

#: Default tier per role (None: the router decides). Override with ``role_tiers=``.
DEFAULT_ROLE_TIERS: dict[str, int | None] = {
    "answer": None,
    "planner": 3,
    "executor": 2,
    "research": 3,
    "code": 3,
    "review": 2,
    "merge": 4,
    "critic": 4,
    "final": 5,
}

ROLE_PROMPTS: dict[str, str] = {
    "answer": "Answer the task directly and concisely.",
    "planner": "Write a short numbered plan (at most 5 steps) for the task. Do not execute it.",
    "executor": "Carry out the plan for the task and give the final answer.",
    "research": "You are the research specialist: gather the facts, sources and constraints "
    "the task needs.",
    "code": "You are the coding specialist: write or outline the code the task needs.",
    "review": "You are the review specialist: list the risks, mistakes and edge cases to "
    "watch for.",
    "merge": "Merge the specialists' notes into one complete answer to the task.",
    "critic": "You are a critic. Reply APPROVE or REJECT on the first line, then the main "
    "issue in one line.",
    "final": "Write the final answer to the task from the draft, fixing every issue the "
    "critics raised.",
}

DEFAULT_SPECIALISTS = ("research", "code", "review")


def _critic_approves(text: str) -> bool | None:
    head = text.strip().split("\n", 1)[0].upper()
    if "APPROVE" in head or head.startswith("PASS"):
        return True
    if "REJECT" in head or head.startswith("FAIL"):
        return False
    return None


class StrategyCalls:
    """Model calls by role for the strategy graphs (sync and async share everything else).

    Usage::

        calls = StrategyCalls(llm, role_tiers={"merge": 3})
        node = calls.node("answer", lambda s: [HumanMessage(s["task"])], lambda s, m: {...})
    """

    def __init__(self, llm: Any, role_tiers: Mapping[str, int | None] | None = None) -> None:
        self.llm = llm
        self.role_tiers = {**DEFAULT_ROLE_TIERS, **dict(role_tiers or {})}
        for role, tier in self.role_tiers.items():
            if tier is not None and tier not in range(1, 6):
                raise ValueError(f"role_tiers[{role!r}] must be 1 to 5 or None, got {tier}")

    def _prompt(self, role: str, user: str) -> list[BaseMessage]:
        base = role.split("-")[0]
        return [SystemMessage(ROLE_PROMPTS.get(base, ROLE_PROMPTS["answer"])), HumanMessage(user)]

    def _role_tier(self, role: str) -> tuple[int | None, str | None]:
        """(tier to force, note): a role's tier is where it should run, not a requirement;
        when it is unavailable (no key, server down) the router decides and the note says so."""
        tier = self.role_tiers.get(role.split("-")[0])
        if tier is None:
            return None, None
        down = self.llm.registry.unavailable()
        if tier not in down:
            return tier, None
        return None, f"role tier {tier} unavailable ({down[tier]}): routed"

    def _kwargs(self, role: str, config: RunnableConfig | None) -> tuple[dict[str, Any], Any]:
        tier, note = self._role_tier(role)
        if note:
            logger.info("strategy role %s: %s", role, note)
        cfg: dict[str, Any] = dict(config or {})
        cfg["metadata"] = {**(cfg.get("metadata") or {}), "aco_role": role}
        if role.split("-")[0] == "critic":  # a critic is a verifier: traced as one
            cfg["tags"] = [*(cfg.get("tags") or []), VERIFIER_TAG]
        if tier is not None:
            cfg["metadata"]["aco_tier"] = tier
        conf = (config or {}).get("configurable") or {}
        kw: dict[str, Any] = {}
        if tier is not None:
            kw["force_tier"] = tier
        if conf.get("thread_id"):
            kw["aco_run_id"] = f"strategy:{conf['thread_id']}"
        return kw, cfg

    def _event(self, role: str, msg: AIMessage) -> dict[str, Any]:
        meta = (msg.response_metadata or {}).get("aco") or {}
        tier = int(meta.get("tier") or self.role_tiers.get(role.split("-")[0]) or 1)
        cost, i, o = call_cost(msg, tier, self.llm.config)
        return {
            "type": "model",
            "role": role,
            "tier": tier,
            "model_id": meta.get("model_id") or self.llm.config.tier(tier).model_id,
            "reason": "; ".join(r for r in (self._role_tier(role)[1], meta.get("reason")) if r),
            "cost": cost,
            "input_tokens": i,
            "output_tokens": o,
        }

    def call(self, role: str, user: str, config: RunnableConfig | None) -> AIMessage:
        """One sync call for ``role``."""
        kw, cfg = self._kwargs(role, config)
        return self.llm.invoke(self._prompt(role, user), config=cfg, **kw)

    async def acall(self, role: str, user: str, config: RunnableConfig | None) -> AIMessage:
        """One async call for ``role``."""
        kw, cfg = self._kwargs(role, config)
        return await self.llm.ainvoke(self._prompt(role, user), config=cfg, **kw)

    def node(
        self,
        role: str | Callable[[Mapping[str, Any]], str],
        user: Callable[[Mapping[str, Any]], str],
        update: Callable[[Mapping[str, Any], str, dict[str, Any]], dict[str, Any]],
        name: str,
    ) -> Runnable[Any, Any]:
        """A node: build the prompt from state, call the role's tier, map the answer to an
        update (``update(state, text, event)``); the event is appended to ``aco_events``."""

        def _role(state: Mapping[str, Any]) -> str:
            return role(state) if callable(role) else role

        def _finish(state: Mapping[str, Any], r: str, msg: AIMessage) -> dict[str, Any]:
            event = self._event(r, msg)
            out = update(state, message_text(msg), event)
            out["aco_events"] = [*(out.get("aco_events") or []), event]
            return out

        def sync(state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
            r = _role(state)
            msg = self.call(r, user(state), config)
            verdict = _verdict(r, msg)
            if verdict is not None:
                with contextlib.suppress(RuntimeError):
                    dispatch_custom_event(EVENT_VERDICT, verdict, config=config)
            return _finish(state, r, msg)

        async def asynchronous(state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
            r = _role(state)
            msg = await self.acall(r, user(state), config)
            verdict = _verdict(r, msg)
            if verdict is not None:
                with contextlib.suppress(RuntimeError):
                    await adispatch_custom_event(EVENT_VERDICT, verdict, config=config)
            return _finish(state, r, msg)

        return RunnableLambda(sync, afunc=asynchronous, name=name)


def _verdict(role: str, msg: AIMessage) -> dict[str, Any] | None:
    """A critic's verdict for the trace (APPROVE/REJECT; None when it said neither)."""
    if role.split("-")[0] != "critic":
        return None
    text = message_text(msg)
    return {"passed": _critic_approves(text), "why": text.strip()[:200], "role": role}


def _notes(outputs: Sequence[Mapping[str, Any]]) -> str:
    return "\n\n".join(f"[{o['role']}]\n{o['content']}" for o in outputs)


def _output(state: Mapping[str, Any], text: str, event: dict[str, Any]) -> dict[str, Any]:
    return {"outputs": [{"role": event["role"], "tier": event["tier"], "content": text}]}


def _build_simple(calls: StrategyCalls) -> StrategyBuilder:
    g = StateGraph(StrategyState)
    g.add_node(
        "answer",
        calls.node(
            "answer",
            lambda s: s["task"],
            lambda s, text, e: {"answer": text, "strategy": "simple"},
            "answer",
        ),
    )
    g.add_edge(START, "answer")
    g.add_edge("answer", END)
    return g


def _build_moderate(calls: StrategyCalls) -> StrategyBuilder:
    g = StateGraph(StrategyState)
    g.add_node(
        "plan",
        calls.node("planner", lambda s: s["task"], lambda s, text, e: {"plan": text}, "plan"),
    )
    g.add_node(
        "execute",
        calls.node(
            "executor",
            lambda s: f"TASK:\n{s['task']}\n\nPLAN:\n{s.get('plan', '')}",
            lambda s, text, e: {"answer": text, "strategy": "moderate"},
            "execute",
        ),
    )
    g.add_edge(START, "plan")
    g.add_edge("plan", "execute")
    g.add_edge("execute", END)
    return g


def _fan_out(specialists: Sequence[str]) -> Callable[[Mapping[str, Any]], list[Send]]:
    def fan(state: Mapping[str, Any]) -> list[Send]:
        return [Send("specialist", {"task": state["task"], "role": r}) for r in specialists]

    return fan


def _specialist_node(calls: StrategyCalls) -> Runnable[Any, Any]:
    return calls.node(lambda s: s["role"], lambda s: s["task"], _output, "specialist")


def _build_complex(calls: StrategyCalls, specialists: Sequence[str]) -> StrategyBuilder:
    g = StateGraph(StrategyState)
    g.add_node("specialist", _specialist_node(calls), input_schema=SpecialistInput)
    g.add_node(
        "merge",
        calls.node(
            "merge",
            lambda s: f"TASK:\n{s['task']}\n\nSPECIALIST NOTES:\n{_notes(s.get('outputs') or [])}",
            lambda s, text, e: {"answer": text, "strategy": "complex"},
            "merge",
        ),
    )
    g.add_conditional_edges(START, _fan_out(specialists), ["specialist"])
    g.add_edge("specialist", "merge")
    g.add_edge("merge", END)
    return g


def _build_critical(
    calls: StrategyCalls, specialists: Sequence[str], critics: int, human_approval: bool
) -> StrategyBuilder:
    g = StateGraph(StrategyState)
    g.add_node("specialist", _specialist_node(calls), input_schema=SpecialistInput)
    g.add_node(
        "draft",
        calls.node(
            "merge",
            lambda s: f"TASK:\n{s['task']}\n\nSPECIALIST NOTES:\n{_notes(s.get('outputs') or [])}",
            lambda s, text, e: {"plan": text},
            "draft",
        ),
    )

    def critic_update(s: Mapping[str, Any], text: str, e: dict[str, Any]) -> dict[str, Any]:
        return {"critiques": [{"role": e["role"], "tier": e["tier"], "content": text}]}

    g.add_node(
        "critic",
        calls.node(
            lambda s: s["role"],
            lambda s: f"TASK:\n{s['task']}\n\nDRAFT ANSWER:\n{s.get('plan', '')}",
            critic_update,
            "critic",
        ),
        input_schema=SpecialistInput,
    )

    def fan_critics(state: Mapping[str, Any]) -> list[Send]:
        return [
            Send(
                "critic", {"task": state["task"], "role": f"critic-{i + 1}", "plan": state["plan"]}
            )
            for i in range(critics)
        ]

    def approve(state: StrategyState) -> dict[str, Any]:
        verdicts = [_critic_approves(c["content"]) for c in state.get("critiques") or []]
        rejected = [
            c for c, v in zip(state.get("critiques") or [], verdicts, strict=True) if v is False
        ]
        approved: bool | None = not rejected
        if human_approval:
            answer = interrupt(
                {
                    "type": "aco_approval",
                    "question": "Approve the final answer for this critical task?",
                    "task": state["task"],
                    "draft": state.get("plan", ""),
                    "critiques": [c["content"] for c in state.get("critiques") or []],
                }
            )
            approved = approval_granted(answer)
        return {"approved": approved}

    g.add_node("approval", approve)
    g.add_node(
        "final",
        calls.node(
            "final",
            lambda s: (
                f"TASK:\n{s['task']}\n\nDRAFT:\n{s.get('plan', '')}\n\nCRITIQUES:\n"
                + _notes(s.get("critiques") or [])
            ),
            lambda s, text, e: {"answer": text, "strategy": "critical"},
            "final",
        ),
    )

    def rejected(state: StrategyState) -> dict[str, Any]:
        why = "; ".join(
            c["content"].strip().split("\n")[-1]
            for c in state.get("critiques") or []
            if _critic_approves(c["content"]) is False
        )
        text = "Not released: the critical answer was rejected" + (f" ({why})" if why else "")
        return {"answer": text, "strategy": "critical"}

    g.add_node("rejected", rejected)
    g.add_conditional_edges(START, _fan_out(specialists), ["specialist"])
    g.add_edge("specialist", "draft")
    g.add_conditional_edges("draft", fan_critics, ["critic"])
    g.add_edge("critic", "approval")
    g.add_conditional_edges(
        "approval", lambda s: "final" if s.get("approved") else "rejected", ["final", "rejected"]
    )
    g.add_edge("final", END)
    g.add_edge("rejected", END)
    return g


def _calls(
    config_or_model: ConfigOrModel,
    tier_models: Mapping[int, BaseChatModel] | None,
    role_tiers: Mapping[str, int | None] | None,
) -> StrategyCalls:
    return StrategyCalls(resolve_router_model(config_or_model, tier_models), role_tiers)


def create_simple_graph(
    config_or_model: ConfigOrModel = None,
    *,
    tier_models: Mapping[int, BaseChatModel] | None = None,
    role_tiers: Mapping[str, int | None] | None = None,
    checkpointer: Checkpointer = None,
) -> StrategyGraph:
    """Seed 3 ``simple``: one call, the router's tier.

    Args:
        config_or_model: An ``ACOConfig``, YAML path, dict, or an ``ACORouterChatModel``.
        tier_models: Chat models per tier (for a new router model).
        role_tiers: Tier per role (``planner``, ``executor``, ...); None lets the router choose.
        checkpointer: A LangGraph checkpointer.

    Returns:
        The compiled graph (input and output ``StrategyState``).

    Example:
        ```python
        create_simple_graph(cfg, tier_models=tiers).invoke({"task": "What is 2+2?"})
        ```
    """
    calls = _calls(config_or_model, tier_models, role_tiers)
    return _build_simple(calls).compile(checkpointer=checkpointer, name="aco_simple")


def create_moderate_graph(
    config_or_model: ConfigOrModel = None,
    *,
    tier_models: Mapping[int, BaseChatModel] | None = None,
    role_tiers: Mapping[str, int | None] | None = None,
    checkpointer: Checkpointer = None,
) -> StrategyGraph:
    """Seed 3 ``moderate``: plan (planner tier), then execute (executor tier).

    Args:
        config_or_model: An ``ACOConfig``, YAML path, dict, or an ``ACORouterChatModel``.
        tier_models: Chat models per tier (for a new router model).
        role_tiers: Tier per role (``planner``, ``executor``, ...); None lets the router choose.
        checkpointer: A LangGraph checkpointer.

    Returns:
        The compiled graph.

    Example:
        ```python
        create_moderate_graph(cfg, tier_models=tiers).invoke({"task": "Write a parser"})
        ```
    """
    calls = _calls(config_or_model, tier_models, role_tiers)
    return _build_moderate(calls).compile(checkpointer=checkpointer, name="aco_moderate")


def create_complex_graph(
    config_or_model: ConfigOrModel = None,
    *,
    tier_models: Mapping[int, BaseChatModel] | None = None,
    role_tiers: Mapping[str, int | None] | None = None,
    specialists: Sequence[str] = DEFAULT_SPECIALISTS,
    checkpointer: Checkpointer = None,
) -> StrategyGraph:
    """Seed 3 ``complex``: specialists in parallel (``Send``), then a merge call.

    Args:
        config_or_model: An ``ACOConfig``, YAML path, dict, or an ``ACORouterChatModel``.
        tier_models: Chat models per tier (for a new router model).
        role_tiers: Tier per role (``planner``, ``executor``, ...); None lets the router choose.
        specialists: The specialist roles run in parallel.
        checkpointer: A LangGraph checkpointer.

    Returns:
        The compiled graph.

    Raises:
        ValueError: ``specialists`` is empty.

    Example:
        ```python
        create_complex_graph(cfg, tier_models=tiers).invoke({"task": "Compare three designs"})
        ```
    """
    if not specialists:
        raise ValueError("specialists must name at least one role")
    calls = _calls(config_or_model, tier_models, role_tiers)
    return _build_complex(calls, specialists).compile(checkpointer=checkpointer, name="aco_complex")


def create_critical_graph(
    config_or_model: ConfigOrModel = None,
    *,
    tier_models: Mapping[int, BaseChatModel] | None = None,
    role_tiers: Mapping[str, int | None] | None = None,
    specialists: Sequence[str] = DEFAULT_SPECIALISTS,
    critics: int = 2,
    human_approval: bool = False,
    checkpointer: Checkpointer = None,
) -> StrategyGraph:
    """Seed 3 ``critical``: specialists, a draft, a critic ensemble, optional human approval.

    With ``human_approval`` the run stops at an ``interrupt`` (needs a checkpointer); resume
    with ``Command(resume=True)`` (release) or ``Command(resume=False)`` (reject).

    Args:
        config_or_model: An ``ACOConfig``, YAML path, dict, or an ``ACORouterChatModel``.
        tier_models: Chat models per tier (for a new router model).
        role_tiers: Tier per role (``planner``, ``executor``, ...); None lets the router choose.
        specialists: The specialist roles run in parallel.
        critics: How many critics review the draft.
        human_approval: Wait for a human before releasing the answer.
        checkpointer: A LangGraph checkpointer (needed for ``human_approval``).

    Returns:
        The compiled graph.

    Raises:
        ValueError: ``critics < 1`` or ``specialists`` is empty.

    Example:
        ```python
        g = create_critical_graph(cfg, tier_models=tiers, human_approval=True,
                                  checkpointer=InMemorySaver())
        ```
    """
    if critics < 1:
        raise ValueError(f"critics must be >= 1, got {critics}")
    if not specialists:
        raise ValueError("specialists must name at least one role")
    calls = _calls(config_or_model, tier_models, role_tiers)
    return _build_critical(calls, specialists, critics, human_approval).compile(
        checkpointer=checkpointer, name="aco_critical"
    )


def create_strategy_graph(
    config_or_model: ConfigOrModel = None,
    *,
    tier_models: Mapping[int, BaseChatModel] | None = None,
    role_tiers: Mapping[str, int | None] | None = None,
    specialists: Sequence[str] = DEFAULT_SPECIALISTS,
    critics: int = 2,
    human_approval: bool = False,
    checkpointer: Checkpointer = None,
) -> StrategyGraph:
    """Classify the task (``routing.strategy.classify_strategy`` over the router's
    assessment and seed 3's markers) and run the matching strategy.

    Args:
        config_or_model: An ``ACOConfig``, YAML path, dict, or an ``ACORouterChatModel``.
        tier_models: Chat models per tier (for a new router model).
        role_tiers: Tier per role (``planner``, ``executor``, ...); None lets the router choose.
        specialists: The specialist roles of ``complex`` and ``critical``.
        critics: How many critics ``critical`` runs.
        human_approval: ``critical`` waits for a human before releasing the answer.
        checkpointer: A LangGraph checkpointer.

    Returns:
        The compiled graph; a task without a non-empty ``task`` string raises ``ValueError``.

    Example:
        ```python
        g = create_strategy_graph(cfg, tier_models=tiers)
        g.invoke({"task": "Audit the payment service for security issues"})["strategy"]
        ```
    """
    from aco_langchain.routing import RouteRequest, get_router
    from aco_langchain.routing.strategy import classify_strategy

    calls = _calls(config_or_model, tier_models, role_tiers)
    cfg = calls.llm.config
    router = get_router(cfg)

    def classify(state: StrategyState) -> dict[str, Any]:
        task = state.get("task")
        if not isinstance(task, str) or not task.strip():
            raise ValueError("the input needs a non-empty 'task' string")
        a = router.assess(RouteRequest.from_text(task), cfg)
        return {"complexity": classify_strategy(task, a)}

    g = StateGraph(StrategyState)
    g.add_node("classify", classify)
    g.add_node("simple", _build_simple(calls).compile(name="simple"))
    g.add_node("moderate", _build_moderate(calls).compile(name="moderate"))
    g.add_node("complex", _build_complex(calls, specialists).compile(name="complex"))
    g.add_node(
        "critical",
        _build_critical(calls, specialists, critics, human_approval).compile(name="critical"),
    )
    g.add_edge(START, "classify")
    g.add_conditional_edges("classify", lambda s: s["complexity"], list(STRATEGIES))
    for s in STRATEGIES:
        g.add_edge(s, END)
    return g.compile(checkpointer=checkpointer, name="aco_strategies")


__all__ = [
    "DEFAULT_ROLE_TIERS",
    "DEFAULT_SPECIALISTS",
    "ROLE_PROMPTS",
    "STRATEGIES",
    "StrategyBuilder",
    "StrategyCalls",
    "StrategyGraph",
    "create_complex_graph",
    "create_critical_graph",
    "create_moderate_graph",
    "create_simple_graph",
    "create_strategy_graph",
]
