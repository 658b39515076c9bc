"""Recorded agent runs: the table, the simulated verifier and run-level policies over them.

A row is one complete agent run of one model on one task with its real outcome and cost.
A :class:`RunPolicy` says how a task is run live: try the models of a cheap-first ladder
in order; a run past its rung's step cap is stopped (it counts as failed, its cost is
prorated by the calls it made); a run the verifier rejects escalates to the next rung.
The verifier is simulated from its quality alone (``recall``: share of failed runs it
rejects; ``false_reject``: share of resolved runs it rejects), reproducibly from a seeded
hash of task and model, and also in expectation.

Example:
    ```python
    from aco_langchain.replay.runs import load_runs, parse_verifier, RunPolicy, simulate_task

    table = load_runs("ood176_results_long.csv")
    policy = RunPolicy(ladder=("Qwen3-Max", "gpt-5.4"), step_caps=(20, None))
    outcome = simulate_task(table, table.tasks[0], policy, parse_verifier("oracle"), seed=0)
    print(outcome.resolved, outcome.cost_usd, [a.model for a in outcome.attempts])
    ```
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aco_langchain.errors import DataError

logger = logging.getLogger(__name__)

_REQUIRED = ("task_id", "model", "cost_usd", "calls")


@dataclass(frozen=True)
class AgentRun:
    """One complete recorded agent run: a model on a task, its outcome, cost and calls."""

    task_id: str
    model: str
    resolved: bool
    cost_usd: float
    calls: int


@dataclass(frozen=True)
class RunTable:
    """Recorded runs of every model on every task (tasks missing a model are dropped)."""

    runs: dict[tuple[str, str], AgentRun]
    tasks: tuple[str, ...]
    models: tuple[str, ...]
    prompts: dict[str, str] = field(default_factory=dict)

    def run(self, task_id: str, model: str) -> AgentRun:
        """The recorded run of ``model`` on ``task_id``."""
        return self.runs[(task_id, model)]

    def subset(self, tasks: Sequence[str]) -> RunTable:
        """The same models on a subset of the tasks (a split)."""
        keep = set(tasks)
        runs = {k: v for k, v in self.runs.items() if k[0] in keep}
        prompts = {t: p for t, p in self.prompts.items() if t in keep}
        return RunTable(runs=runs, tasks=tuple(tasks), models=self.models, prompts=prompts)


@dataclass(frozen=True)
class VerifierSpec:
    """A verifier by its quality: ``recall`` = P(reject | run failed), ``false_reject`` =
    P(reject | run resolved). ``oracle`` is recall 1, false_reject 0."""

    recall: float
    false_reject: float

    @property
    def is_oracle(self) -> bool:
        return self.recall == 1.0 and self.false_reject == 0.0

    def label(self) -> str:
        """``oracle`` or ``recall=R,false_reject=Q`` (the CLI's spelling)."""
        if self.is_oracle:
            return "oracle"
        return f"recall={self.recall:g},false_reject={self.false_reject:g}"


@dataclass(frozen=True)
class RunPolicy:
    """Cheap-first escalation: ``ladder`` in order, ``step_caps[i]`` for rung i (None: no cap)."""

    ladder: tuple[str, ...]
    step_caps: tuple[int | None, ...]

    def __post_init__(self) -> None:
        if not self.ladder:
            raise DataError("a run policy needs at least one model in its ladder")
        if len(self.step_caps) != len(self.ladder):
            raise DataError("a run policy needs one step cap (or None) per ladder rung")


@dataclass(frozen=True)
class Attempt:
    """One rung tried on one task, as simulated."""

    model: str
    cost_usd: float
    calls: int
    resolved: bool
    accepted: bool
    stopped_by_cap: bool


@dataclass(frozen=True)
class TaskOutcome:
    """What a policy did on one task: the attempts, the result handed back, and expectations."""

    task_id: str
    attempts: tuple[Attempt, ...]
    resolved: bool
    cost_usd: float
    expected_resolved: float
    expected_cost_usd: float


def parse_verifier(text: str) -> VerifierSpec:
    """Parse ``oracle`` or ``recall=R,false_reject=Q`` (both in [0, 1]).

    Args:
        text: The ``--verifier`` value.

    Returns:
        The verifier's quality.

    Raises:
        DataError: The text is neither form, or a value is outside [0, 1].

    Example:
        ```python
        parse_verifier("recall=0.8,false_reject=0.1")   # VerifierSpec(0.8, 0.1)
        ```
    """
    spec = text.strip().lower()
    if spec == "oracle":
        return VerifierSpec(1.0, 0.0)
    values: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, sep, raw = part.partition("=")
        if not sep or key.strip() not in ("recall", "false_reject"):
            break
        try:
            values[key.strip()] = float(raw)
        except ValueError:
            break
    if set(values) != {"recall", "false_reject"} or not all(
        0.0 <= v <= 1.0 for v in values.values()
    ):
        raise DataError(
            f"--verifier {text!r}: give 'oracle' or 'recall=R,false_reject=Q' with R and Q "
            "in [0, 1] (recall: share of failed runs rejected; false_reject: share of "
            "resolved runs rejected), e.g. --verifier recall=0.8,false_reject=0.1"
        )
    return VerifierSpec(values["recall"], values["false_reject"])


def _resolved(row: dict[str, str], path: Path, line: int) -> bool:
    raw = row.get("resolved")
    if raw in (None, ""):
        raw = row.get("score")
    if raw in (None, ""):
        raise DataError(f"{path}:{line}: no 'resolved' or 'score' value; give 1/0 or a score")
    text = raw.strip().lower()
    if text in ("true", "yes", "pass"):
        return True
    if text in ("false", "no", "fail"):
        return False
    try:
        # A score counts as resolved at 0.5 or more (a 0/1 column reads the same way).
        return float(text) >= 0.5
    except ValueError as err:
        raise DataError(f"{path}:{line}: resolved/score {raw!r} is not 1/0 or a number") from err


def _number(row: dict[str, str], key: str, path: Path, line: int) -> float:
    raw = (row.get(key) or "").strip()
    try:
        value = float(raw)
    except ValueError as err:
        raise DataError(
            f"{path}:{line}: {key} {raw!r} is not a number; every run needs its {key}"
        ) from err
    if value < 0:
        raise DataError(f"{path}:{line}: {key} {value} is negative")
    return value


def load_runs(
    path: str | Path, models: Sequence[str] | None = None, prompts: str | Path | None = None
) -> RunTable:
    """Read a long CSV of complete agent runs.

    Columns: ``task_id, model, resolved`` (or ``score``, resolved at >= 0.5),
    ``cost_usd, calls`` and optionally ``prompt``; other columns are ignored (the
    CodeRouterBench file reads as it is). A task missing a run of a chosen model is dropped
    (logged): every policy is compared on the same tasks.

    Args:
        path: The CSV file.
        models: Keep only these models (in this order); None: all, in first-seen order.
        prompts: Optional JSONL of ``{"task_id", "prompt"}`` records (CodeRouterBench's
            ``*_tasks.jsonl``) when the CSV has no ``prompt`` column.

    Returns:
        The table.

    Raises:
        DataError: The file is missing or unreadable, a required column or value is
            missing, a named model has no runs, or no task has runs of every model.

    Example:
        ```python
        table = load_runs("runs.csv", models=["cheap-model", "big-model"])
        ```
    """
    file = Path(path)
    try:
        with file.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            header = tuple(reader.fieldnames or ())
            missing = [c for c in _REQUIRED if c not in header]
            if "resolved" not in header and "score" not in header:
                missing.append("resolved (or score)")
            if missing:
                raise DataError(
                    f"{file}: missing column(s) {', '.join(missing)}; an agent-runs CSV needs "
                    "task_id, model, resolved|score, cost_usd, calls (prompt optional)"
                )
            runs: dict[tuple[str, str], AgentRun] = {}
            texts: dict[str, str] = {}
            order: list[str] = []
            for line, row in enumerate(reader, start=2):
                task, model = (row.get("task_id") or "").strip(), (row.get("model") or "").strip()
                if not task or not model:
                    raise DataError(f"{file}:{line}: empty task_id or model")
                if model not in order:
                    order.append(model)
                runs[(task, model)] = AgentRun(
                    task_id=task,
                    model=model,
                    resolved=_resolved(row, file, line),
                    cost_usd=_number(row, "cost_usd", file, line),
                    calls=int(_number(row, "calls", file, line)),
                )
                if row.get("prompt"):
                    texts[task] = row["prompt"]
    except OSError as err:
        raise DataError(f"{file}: cannot read the runs file ({err}); check the path") from err
    chosen = list(models) if models else order
    unknown = [m for m in chosen if m not in order]
    if unknown:
        raise DataError(
            f"--models: no runs of {', '.join(unknown)} in {file}; models there: {', '.join(order)}"
        )
    all_tasks = sorted({t for t, _ in runs})
    tasks = [t for t in all_tasks if all((t, m) in runs for m in chosen)]
    if len(tasks) < len(all_tasks):
        logger.warning(
            "%s: %d task(s) lack a run of some chosen model and are left out",
            file,
            len(all_tasks) - len(tasks),
        )
    if not tasks:
        raise DataError(f"{file}: no task has a run of every chosen model ({', '.join(chosen)})")
    if prompts is not None:
        texts.update(_load_prompts(Path(prompts)))
    keep = set(tasks)
    return RunTable(
        runs={k: v for k, v in runs.items() if k[0] in keep and k[1] in chosen},
        tasks=tuple(tasks),
        models=tuple(chosen),
        prompts={t: p for t, p in texts.items() if t in keep},
    )


def _load_prompts(path: Path) -> dict[str, str]:
    texts: dict[str, str] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise DataError(f"{path}: cannot read the prompts file ({err})") from err
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            texts[str(record["task_id"])] = str(record["prompt"])
        except (ValueError, KeyError, TypeError) as err:
            raise DataError(f"{path}:{number}: not a JSON record with task_id and prompt") from err
    return texts


def verdict_draw(seed: int, task_id: str, model: str) -> float:
    """A reproducible uniform draw in [0, 1) for the verifier's verdict on one run."""
    digest = hashlib.blake2b(f"{seed}\x1f{task_id}\x1f{model}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def capped(run: AgentRun, cap: int | None) -> tuple[bool, float, int, bool]:
    """A run under a step cap: (resolved, cost, calls, stopped). Past ``cap`` calls the run
    is stopped at ``cap`` calls, counts as failed, and its cost is prorated by calls."""
    if cap is None or run.calls <= cap:
        return run.resolved, run.cost_usd, run.calls, False
    return False, run.cost_usd * cap / run.calls, cap, True


def accept_probability(resolved: bool, stopped: bool, verifier: VerifierSpec) -> float:
    """P(the verifier accepts a run); a run stopped by its cap is never accepted."""
    if stopped:
        return 0.0
    return 1.0 - (verifier.false_reject if resolved else verifier.recall)


def simulate_task(
    table: RunTable, task_id: str, policy: RunPolicy, verifier: VerifierSpec, seed: int
) -> TaskOutcome:
    """Run ``policy`` on one task with the seeded verifier, and in expectation.

    The last rung's run is handed back whatever the verdict (there is no one left to ask).

    Args:
        table: The recorded runs.
        task_id: The task.
        policy: Ladder and step caps.
        verifier: The verifier's quality.
        seed: Seed of the verdict draws.

    Returns:
        The attempts made, the result handed back and its expected resolved/cost.

    Example:
        ```python
        simulate_task(table, "t1", RunPolicy(("a", "b"), (None, None)), VerifierSpec(1, 0), 0)
        ```
    """
    attempts: list[Attempt] = []
    reach, exp_resolved, exp_cost = 1.0, 0.0, 0.0
    done = False
    last = len(policy.ladder) - 1
    for rung, (model, cap) in enumerate(zip(policy.ladder, policy.step_caps, strict=True)):
        resolved, cost, calls, stopped = capped(table.run(task_id, model), cap)
        p_accept = accept_probability(resolved, stopped, verifier)
        exp_cost += reach * cost
        exp_resolved += reach * (1.0 if rung == last else p_accept) * resolved
        reach *= 1.0 - p_accept
        if not done:
            accepted = verdict_draw(seed, task_id, model) < p_accept
            attempts.append(Attempt(model, cost, calls, resolved, accepted, stopped))
            done = accepted
    return TaskOutcome(
        task_id=task_id,
        attempts=tuple(attempts),
        resolved=attempts[-1].resolved,
        cost_usd=sum(a.cost_usd for a in attempts),
        expected_resolved=exp_resolved,
        expected_cost_usd=exp_cost,
    )


def policy_label(policy: RunPolicy) -> str:
    """``a[cap 20] -> b`` : the ladder as a user reads it."""
    parts = [
        m if c is None else f"{m}[cap {c}]"
        for m, c in zip(policy.ladder, policy.step_caps, strict=True)
    ]
    return " -> ".join(parts)


def parse_models(text: str | None) -> list[str] | None:
    """``a,b,c`` to a list (None or blank: all models)."""
    if not text:
        return None
    return [m for m in (p.strip() for p in re.split(r",", text)) if m]
