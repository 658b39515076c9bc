"""Run-level escalation, live: the policy ``aco replay --runs --calibrate`` chose, deployed.

``agent.escalation_ladder`` lists models cheapest first. A task runs on the first; when that
run is stopped by its step cap (``agent.step_caps[model]``, doom ``step_limit``) or the
verifier rejects its answer, the task runs again from scratch on the next model. With
``agent.require_verified`` only a verifier's PASS accepts a run ("not verified" is not
success); otherwise a run that ended with an answer and no FAIL is accepted. The last rung's
run is returned whatever its verdict (there is no one left to ask).

The decisions (``judge_run``, ``next_rung``) are pure functions over a run's ``aco_events``;
``invoke_ladder`` is the thin driver.

The loop: record runs of candidate models on your own tasks (``task_id, model, resolved,
cost_usd, calls``) → ``aco replay --runs runs.csv --verifier recall=R,false_reject=Q
--calibrate --write-config policy.yaml`` → merge its ``agent:`` block into your config →
build one agent per ladder model and run tasks with ``invoke_ladder``.

Example:
    ```python
    from aco_langchain.agent.run_ladder import invoke_ladder

    agents = {m: create_aco_agent(cfg_for(m), tools) for m in cfg.agent.escalation_ladder}
    out = invoke_ladder(agents, {"messages": [("user", task)]}, config=cfg)
    out.model, out.accepted, [a.model for a in out.attempts]
    ```
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aco_langchain.config import ACOConfig
from aco_langchain.errors import ConfigError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunVerdict:
    """How one run ended, for the ladder: accepted, or why it escalates."""

    accepted: bool
    stopped_by_cap: bool
    reason: str


@dataclass(frozen=True)
class LadderAttempt:
    """One rung's run."""

    model: str
    verdict: RunVerdict
    result: Any


@dataclass(frozen=True)
class LadderResult:
    """The run handed back (the accepted one, else the last rung's) and every attempt."""

    model: str
    accepted: bool
    result: Any
    attempts: tuple[LadderAttempt, ...]


def judge_run(events: Sequence[Mapping[str, Any]], require_verified: bool) -> RunVerdict:
    """Accept or escalate a finished run from its ``aco_events``.

    Args:
        events: The run's events (``stop``, ``verifier`` ...).
        require_verified: Only a verifier's PASS accepts the run.

    Returns:
        The verdict and its reason.

    Example:
        ```python
        judge_run([{"type": "verifier", "passed": True}], True).accepted   # True
        ```
    """
    stop = next((e for e in reversed(events) if e.get("type") == "stop"), None)
    if stop is not None and stop.get("kind") == "step_limit":
        return RunVerdict(False, True, f"stopped by its step cap: {stop.get('reason')}")
    if stop is not None:
        return RunVerdict(False, False, f"stopped: {stop.get('reason')}")
    verdicts = [e.get("passed") for e in events if e.get("type") == "verifier"]
    last = verdicts[-1] if verdicts else None
    if last is True:
        return RunVerdict(True, False, "the verifier passed the answer")
    if last is False:
        return RunVerdict(False, False, "the verifier rejected the answer")
    if require_verified:
        return RunVerdict(False, False, "not verified (agent.require_verified)")
    return RunVerdict(True, False, "answered, not rejected")


def next_rung(ladder: Sequence[str], model: str, verdict: RunVerdict) -> str | None:
    """The model to run next: None when the run is accepted or ``model`` is the last rung."""
    if verdict.accepted:
        return None
    index = list(ladder).index(model)
    return ladder[index + 1] if index + 1 < len(ladder) else None


def invoke_ladder(
    agents: Mapping[str, Any],
    inputs: Any,
    *,
    config: ACOConfig,
    run_config: Any = None,
) -> LadderResult:
    """Run ``inputs`` up ``config.agent.escalation_ladder`` until a run is accepted.

    Args:
        agents: A runnable agent per ladder model (its result has ``aco_events``).
        inputs: The agent's input, given afresh to each rung.
        config: ``agent.escalation_ladder`` and ``agent.require_verified``.
        run_config: Passed to each ``invoke`` (callbacks, context...).

    Returns:
        The accepted run (else the last rung's) and every attempt.

    Raises:
        ConfigError: The ladder is empty or names a model with no agent.

    Example:
        ```python
        invoke_ladder({"cheap": a1, "strong": a2}, inputs, config=cfg).model
        ```
    """
    ladder = config.agent.escalation_ladder
    missing = [m for m in ladder if m not in agents]
    if not ladder or missing:
        raise ConfigError(
            "agent.escalation_ladder is empty: write it with `aco replay --runs ... "
            "--calibrate --write-config F`"
            if not ladder
            else f"agent.escalation_ladder names {', '.join(missing)} but no agent was given "
            "for it: pass one agent per ladder model"
        )
    attempts: list[LadderAttempt] = []
    model: str | None = ladder[0]
    while model is not None:
        result = agents[model].invoke(inputs, run_config)
        events = (result.get("aco_events") or []) if isinstance(result, Mapping) else []
        verdict = judge_run(events, config.agent.require_verified)
        attempts.append(LadderAttempt(model, verdict, result))
        logger.info("run ladder: %s %s", model, verdict.reason)
        model = next_rung(ladder, model, verdict)
    last = attempts[-1]
    return LadderResult(last.model, last.verdict.accepted, last.result, tuple(attempts))


__all__ = [
    "LadderAttempt",
    "LadderResult",
    "RunVerdict",
    "invoke_ladder",
    "judge_run",
    "next_rung",
]
