"""An agent run's state: the turn's ledger key and the ``RunView`` replayed from its events.

Pure: ``RunView.from_events`` rebuilds the run from the state's ``aco_events`` whenever it is
needed; the engine (``agent/engine.py``) and the checks (``agent/checks.py``) both read it.

Example:
    ```python
    from aco_langchain.agent.run import RunView
    view = RunView.from_events(state["aco_events"], policy, spent=llm.spent(run_key))
    view.spent, view.steps, view.prior_failure
    ```
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aco_langchain.agent.doom import DoomDetector, DoomResult
from aco_langchain.agent.events import TurnEvent
from aco_langchain.agent.policy import AgentPolicy, RunSettings
from aco_langchain.chat.messages import message_text


def turn_event(settings: RunSettings, thread_id: str | None, new_id: str) -> TurnEvent:
    """The event that starts a turn, with the run's ledger key.

    Args:
        settings: The run's settings (``run_id`` names the key).
        thread_id: LangGraph's thread id, if any.
        new_id: A fresh random id (the adapter draws it).

    Returns:
        ``{"type": "turn", "run_key": ...}``: ``run_id``, else ``thread_id:<8 chars>``, else
        ``aco-agent-<12 chars>``.

    Example:
        ```python
        turn_event({}, "t1", uuid.uuid4().hex)["run_key"]   # 't1:3f2a9c1d'
        ```
    """
    if settings.get("run_id"):
        key = str(settings["run_id"])
    elif thread_id:
        key = f"{thread_id}:{new_id[:8]}"
    else:
        key = f"aco-agent-{new_id[:12]}"
    return TurnEvent(type="turn", run_key=key)


def current_run_key(events: Iterable[Mapping[str, Any]] | None) -> str | None:
    """The run key of the current turn: its ``turn`` event's, else the turn's latest step's.

    Args:
        events: The state's ``aco_events``.

    Returns:
        The key, or None when the turn has none yet (a graph without the ``start`` node).

    Example:
        ```python
        current_run_key([{"type": "turn", "run_key": "t1:3f2a9c1d"}])   # 't1:3f2a9c1d'
        ```
    """
    for e in reversed(list(events or [])):
        if e.get("run_key"):
            return str(e["run_key"])
        if e.get("type") == "turn":
            break
    return None


@dataclass
class RunView:
    """A run's state derived from its event log (pure; rebuild it whenever needed).

    Example:
        ```python
        view = RunView.from_events(state["aco_events"], policy, spent=llm.spent(run_key))
        view.spent, view.steps, view.prior_failure
        ```
    """

    policy: AgentPolicy
    events: list[dict[str, Any]]
    detector: DoomDetector
    spent: float
    steps: int
    verifier_calls: int
    tool_counts: dict[str, int]
    prior_failure: bool
    task_type: str | None
    stopped: dict[str, Any] | None
    run_key: str | None

    @classmethod
    def from_events(
        cls,
        events: Iterable[Mapping[str, Any]] | None,
        policy: AgentPolicy,
        *,
        spent: float | None = None,
    ) -> RunView:
        """Replay the current turn's events into a doom detector and counters.

        Args:
            events: The state's ``aco_events``.
            policy: The agent's policy.
            spent: What the run has spent, from the spend ledger (the source of truth).
                None only to read a finished run's log offline: the events' recorded costs.

        Returns:
            The view.

        Example:
            ```python
            RunView.from_events(out["aco_events"], policy).steps
            ```
        """
        evs = [dict(e) for e in events or []]
        start = max((i for i, e in enumerate(evs) if e.get("type") == "turn"), default=-1)
        run_key = current_run_key(evs)
        evs = evs[start + 1 :]
        det = DoomDetector(policy.config, max_budget=policy.budget)
        recorded = 0.0
        steps = verifier_calls = 0
        tool_counts: dict[str, int] = {}
        prior_failure = False
        task_type = None
        stopped = None
        for e in evs:
            kind = e.get("type")
            cost = float(e.get("cost") or 0.0)
            if kind == "model":
                steps += 1
                recorded += cost
                det.record_step(cost=cost, output=e.get("digest") or None, model=e.get("model_id"))
                prior_failure = False
                task_type = task_type or e.get("task_type")
            elif kind == "tool":
                recorded += cost
                if e.get("repeat_failure"):
                    # The model insisted on a call that already failed: for doom it
                    # failed again (repeated_failure), though the gate did not run it.
                    det.record_tool(e.get("sig") or e["name"], None, False, 0.0)
                    prior_failure = True
                if e.get("skipped"):
                    continue
                tool_counts[e["name"]] = tool_counts.get(e["name"], 0) + 1
                det.record_tool(e.get("sig") or e["name"], None, bool(e.get("success")), cost)
                if not e.get("success"):
                    prior_failure = True
            elif kind == "verifier":
                recorded += cost
                verifier_calls += 1
                det.add_cost(cost)
                if e.get("passed") is False:
                    prior_failure = True
            elif kind == "stop":
                stopped = e
        return cls(
            policy=policy,
            events=evs,
            detector=det,
            spent=round(recorded if spent is None else spent, 10),
            steps=steps,
            verifier_calls=verifier_calls,
            tool_counts=tool_counts,
            prior_failure=prior_failure,
            task_type=task_type,
            stopped=stopped,
            run_key=run_key,
        )

    @property
    def budget_remaining(self) -> float:
        """USD left of the run's budget."""
        return max(0.0, self.policy.budget - self.spent)

    def doom(self) -> DoomResult:
        """The doom detector's verdict on the run so far."""
        return self.detector.check(self.spent)

    def last_model(self) -> dict[str, Any] | None:
        """The latest ``model`` event, if any."""
        return next((e for e in reversed(self.events) if e.get("type") == "model"), None)


def request_text(messages: Sequence[Any]) -> str:
    """The task: the first human message's text (else the last message's)."""
    for m in messages:
        if getattr(m, "type", None) == "human":
            return message_text(m)
    return message_text(messages[-1]) if messages else ""


__all__ = ["RunView", "current_run_key", "request_text", "turn_event"]
