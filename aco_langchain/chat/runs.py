"""The run key of a call: the root run of its LangChain/LangGraph call tree (one task).

A chain or graph invocation is one task, so every model call inside it shares one budget;
a bare ``llm.invoke(...)`` is a task of its own. ``aco_run_id`` (per call or in
``configurable``) and LangGraph's ``thread_id`` override it.

How the root is known: a tiny callback handler (:data:`TRACKER`) is added to every callback
manager LangChain configures in this process (``register_configure_hook``, the way LangSmith's
tracer is added); it maps each started run to its root and forgets it when the run ends.
The hook is registered by :func:`track_runs`, which the first ``ACORouterChatModel`` built in
the process calls: a process that imports the package without building a router model
pays nothing. The handler takes only chain and tool events; a handler present still costs
LangChain ~10-13 us on every model call (its streaming-handler protocol check). Before
that, a call's run key is its parent run (the root of a one-level chain).

Example:
    ```python
    chain = prompt | llm
    chain.invoke({"q": "..."})      # every llm call in it: run key = the chain run's id
    llm.invoke("hi", config={"configurable": {"thread_id": "t1"}})   # run key "t1"
    ```
"""

from __future__ import annotations

import threading
import uuid
from contextvars import ContextVar
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.runnables import RunnableConfig, ensure_config
from langchain_core.runnables.config import var_child_runnable_config
from langchain_core.tracers.context import register_configure_hook

#: Runs tracked at most at once (a safety net for runs that never report their end).
_MAX_TRACKED = 200_000


class RootRunTracker(BaseCallbackHandler):
    """Maps every started run id to the id of its root run; cheap, never raises.

    Only runs that can have children are tracked (chains, tools): a model call is a leaf,
    and its run key comes from its parent, so LangChain skips this handler for LLM and chat
    model events (two handler dispatches fewer on every model call in the process).
    """

    run_inline = True
    raise_error = False
    ignore_llm = True
    ignore_chat_model = True

    def __init__(self) -> None:
        self._root: dict[UUID, UUID] = {}

    def root_of(self, run_id: UUID) -> UUID:
        """The root of ``run_id``'s tree (itself when it was not seen starting)."""
        return self._root.get(run_id, run_id)

    def _start(self, run_id: UUID, parent_run_id: UUID | None) -> None:
        if len(self._root) > _MAX_TRACKED:
            self._root.clear()
        self._root[run_id] = (
            self._root.get(parent_run_id, parent_run_id) if parent_run_id else run_id
        )

    def _end(self, run_id: UUID) -> None:
        self._root.pop(run_id, None)

    def on_chain_start(
        self, serialized: Any, inputs: Any, *, run_id: UUID, parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:  # fmt: skip
        self._start(run_id, parent_run_id)

    def on_tool_start(
        self, serialized: Any, input_str: Any, *, run_id: UUID,
        parent_run_id: UUID | None = None, **kwargs: Any,
    ) -> None:  # fmt: skip
        self._start(run_id, parent_run_id)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id)


TRACKER = RootRunTracker()
_TRACKER_VAR: ContextVar[RootRunTracker | None] = ContextVar("aco_root_tracker", default=TRACKER)
_TRACKING = threading.Lock()
_tracking = False


def track_runs() -> None:
    """Add :data:`TRACKER` to every callback manager LangChain configures from now on in
    this process (idempotent; ``ACORouterChatModel`` calls it when it is built).

    Example:
        ```python
        track_runs()   # chains started after this share one run key per tree
        ```
    """
    global _tracking
    with _TRACKING:
        if not _tracking:
            register_configure_hook(_TRACKER_VAR, True)
            _tracking = True


#: The run key of each router model's latest call in this thread / asyncio task, by the
#: model's token. A context variable, not model state: concurrent calls on one shared model
#: (the server's) never see each other's run. Copied on write, kept small.
_LAST_RUN: ContextVar[dict[object, str] | None] = ContextVar("aco_last_run", default=None)
_LAST_RUN_MAX = 64


def remember_run(owner: object, run_key: str) -> None:
    """Remember ``run_key`` as ``owner``'s latest call in the current context."""
    runs = _LAST_RUN.get()
    if runs is not None and runs.get(owner) == run_key:
        return
    new = dict(runs or {})
    new.pop(owner, None)
    if len(new) >= _LAST_RUN_MAX:
        del new[next(iter(new))]
    new[owner] = run_key
    _LAST_RUN.set(new)


def last_run(owner: object) -> str | None:
    """The run key of ``owner``'s latest call made in the current thread / asyncio task."""
    runs = _LAST_RUN.get()
    return None if runs is None else runs.get(owner)


def call_run_key(
    config: RunnableConfig | None, kwargs: dict[str, Any], option: str = "aco_run_id"
) -> tuple[RunnableConfig, str | None]:
    """Fill ``kwargs[option]`` with the call's run key and return the config to run with.

    ``aco_run_id`` given: kept. ``thread_id`` in ``configurable``: that. Otherwise the root
    of the caller's run tree, or, at top level, this call's own run id (set in the config so
    LangChain uses it). Returns the root run id as the trace id.
    """
    if config is None and var_child_runnable_config.get() is None:
        # A bare top-level call (the common case): no parent, no thread, no tags; LangChain
        # fills in the rest of the config itself.
        new_id = uuid.uuid4()
        trace_id = str(new_id)
        kwargs.setdefault(option, trace_id)
        return {"run_id": new_id}, trace_id
    cfg = ensure_config(config)
    parent = getattr(cfg.get("callbacks"), "parent_run_id", None)
    if parent is not None:
        trace = TRACKER.root_of(parent)
    else:
        run_id = cfg.get("run_id")
        if run_id is None:
            run_id = uuid.uuid4()
            cfg["run_id"] = run_id
        trace = run_id
    trace_id = str(trace)
    configurable = cfg.get("configurable") or {}
    if option not in kwargs:
        if "thread_id" in configurable:
            kwargs[option] = str(configurable["thread_id"])
        else:
            kwargs[option] = trace_id
    return cfg, trace_id


__all__ = [
    "TRACKER",
    "RootRunTracker",
    "call_run_key",
    "last_run",
    "remember_run",
    "track_runs",
]
