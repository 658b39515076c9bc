"""Outcome data sets for training and evaluating the learned router.

Every supported format loads into one ``OutcomeSet``: per prompt, whether each model
answered correctly and what the call cost. Formats (detected from the file):

* RouterBench CSV (``sample_id, prompt, eval_name, <model>, <model>|total_cost, ...``);
* JSONL outcomes, one object a line::

      {"id": "q1", "prompt": "...", "task": "math",
       "outcomes": {"gpt-4o": {"correct": 1, "cost": 0.004}, "llama-3-8b": {"correct": 0}}}

  (``cost`` optional; else ``input_tokens``/``output_tokens`` times a known list price;
  ``confidence`` optional: the answer's confidence in [0, 1], what the cascade reads);
* replay JSONL (what ``aco collect`` writes and ``aco replay`` replays), one row per
  (prompt, model), grouped by ``id``::

      {"id": "q1", "prompt": "...", "model": "gpt-4o", "response": "...",
       "input_tokens": 12, "output_tokens": 3, "cost_usd": 0.0004, "score": 1.0,
       "latency_s": 0.8}

  (``messages`` instead of ``prompt``: the last user turn is the prompt); the two JSONL
  kinds may not be mixed in one file;
* RouteLLM MMLU CSV (``prompt, <weak>, <strong>, subject``; no cost column: list prices
  times tokens estimated from the prompt, one output token: the answer letter);
* llmrouter JSON (``[{"question", "scores": {model: score}, ...}]``, with the models'
  prices read from ``llm_candidates.json`` beside it when present).

Empty outcomes count as wrong (the documented protocol). Task labels are kept for
stratified splits and reports only; they are never a routing feature.

Usage::

    from aco_langchain.routing.training.datasets import load_outcomes
    data = load_outcomes(["routerbench/mbpp_train.csv", "routerbench/arc_challenge_train.csv"])
    data.correct.shape  # (n_prompts, n_models)
"""

from __future__ import annotations

import csv
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aco_langchain.errors import DataError

log = logging.getLogger(__name__)

#: List prices, USD per 1M tokens (input, output), for models the shipped data names.
LIST_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4-1106-preview": (10.0, 30.0),
    "gpt-3.5-turbo-1106": (1.0, 2.0),
    "claude-v1": (8.0, 24.0),
    "claude-v2": (8.0, 24.0),
    "claude-instant-v1": (0.8, 2.4),
    "meta/llama-2-70b-chat": (0.9, 0.9),
    "zero-one-ai/Yi-34B-Chat": (0.8, 0.8),
    "meta/code-llama-instruct-34b-chat": (0.776, 0.776),
    "mistralai/mixtral-8x7b-chat": (0.6, 0.6),
    "WizardLM/WizardLM-13B-V1.2": (0.3, 0.3),
    "mistralai/mistral-7b-chat": (0.2, 0.2),
    "mistralai/Mixtral-8x7B-Instruct-v0.1": (0.24, 0.24),
}

CHARS_PER_TOKEN = 4.0


def estimate_tokens(text: str) -> int:
    """Approximate token count of ``text`` (characters / 4, like count_tokens_approximately)."""
    return max(1, math.ceil(len(text) / CHARS_PER_TOKEN))


@dataclass
class OutcomeSet:
    """Per-prompt outcomes of several models.

    ``correct`` and ``cost`` are ``(n_prompts, n_models)`` arrays; ``out_tokens`` holds the
    observed (or estimated) output tokens per call, NaN where unknown.
    """

    name: str
    ids: list[str]
    prompts: list[str]
    tasks: list[str]
    models: list[str]
    correct: np.ndarray
    cost: np.ndarray
    cost_source: str = "observed"
    out_tokens: np.ndarray | None = None
    n_empty: int = 0
    notes: list[str] = field(default_factory=list)
    #: Per-prompt training weight (None: 1 each); ``aco train --base-weight`` sets it.
    weights: np.ndarray | None = None
    #: Per-call answer confidence in [0, 1] (n x M), NaN where the data has none.
    confidence: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.prompts)

    def subset(self, rows: np.ndarray) -> OutcomeSet:
        """The rows ``rows`` (integer indices) as a new set."""
        idx = [int(i) for i in rows]
        return OutcomeSet(
            name=self.name,
            ids=[self.ids[i] for i in idx],
            prompts=[self.prompts[i] for i in idx],
            tasks=[self.tasks[i] for i in idx],
            models=list(self.models),
            correct=self.correct[idx],
            cost=self.cost[idx],
            cost_source=self.cost_source,
            out_tokens=None if self.out_tokens is None else self.out_tokens[idx],
            n_empty=self.n_empty,
            notes=list(self.notes),
            weights=None if self.weights is None else self.weights[idx],
            confidence=None if self.confidence is None else self.confidence[idx],
        )

    def summary(self) -> dict[str, Any]:
        """A JSON-able description (what the bundle manifest records)."""
        return {
            "name": self.name,
            "n_prompts": len(self),
            "models": list(self.models),
            "tasks": dict(sorted(_counts(self.tasks).items())),
            "accuracy": {
                m: round(float(self.correct[:, j].mean()), 4) for j, m in enumerate(self.models)
            },
            "mean_cost": {m: float(self.cost[:, j].mean()) for j, m in enumerate(self.models)},
            "cost_source": self.cost_source,
            "empty_outcomes_counted_wrong": int(self.n_empty),
        }


def _counts(items: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for it in items:
        out[it] = out.get(it, 0) + 1
    return out


# --------------------------------------------------------------------------- formats


class _Outcome(BaseModel):
    model_config = ConfigDict(extra="ignore")
    correct: float | None = Field(None, ge=0.0, le=1.0)
    cost: float | None = Field(None, ge=0.0)
    input_tokens: int | None = Field(None, ge=0)
    output_tokens: int | None = Field(None, ge=0)
    confidence: float | None = Field(None, ge=0.0, le=1.0)


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: str
    content: Any = ""


class ReplayRow(BaseModel):
    """One row of the replay JSONL: one prompt answered by one model (``aco collect``
    writes it; ``aco train`` and replay tiers (``replay/recording.py``) read it with this
    one parser; a replay tier also needs the usage and cost it answers with).

    Example:
        ```python
        ReplayRow.model_validate_json('{"id": 1, "prompt": "2+2?", "model": "m"}').chat()
        ```
    """

    model_config = ConfigDict(extra="ignore")
    id: str | int
    prompt: str | None = None
    messages: list[_Message] | None = None
    model: str = Field(..., min_length=1)
    response: str = ""
    input_tokens: int | None = Field(None, ge=0)
    output_tokens: int | None = Field(None, ge=0)
    cost_usd: float | None = Field(None, ge=0.0)
    score: float | None = Field(None, ge=0.0, le=1.0)
    latency_s: float | None = Field(None, ge=0.0)
    confidence: float | None = Field(None, ge=0.0, le=1.0)
    task: str | None = None

    def chat(self) -> list[tuple[str, str]]:
        """The conversation as (role, text) turns: ``messages``, else one user turn."""
        if self.messages is None:
            return [("user", self.prompt or "")]
        return [(m.role, _content_text(m.content)) for m in self.messages]

    def prompt_text(self) -> str:
        """The prompt the router judges: ``prompt``, else the last user turn's text."""
        if self.prompt is not None:
            return self.prompt
        for msg in reversed(self.messages or []):
            if msg.role in ("user", "human"):
                return _content_text(msg.content)
        return ""


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        return "".join(
            str(part.get("text", "")) if isinstance(part, dict) else str(part) for part in content
        )
    return str(content)


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str | int
    prompt: str
    outcomes: dict[str, _Outcome] = Field(..., min_length=1)
    task: str | None = None


def _price_cost(model: str, in_tok: float, out_tok: float, where: str) -> float:
    if model not in LIST_PRICES:
        raise DataError(
            f'{where}: no cost for model {model!r} and no known list price: give "cost" per outcome'
        )
    pin, pout = LIST_PRICES[model]
    return (in_tok * pin + out_tok * pout) / 1e6


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    csv.field_size_limit(1 << 30)
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def _clean_prompt(raw: str) -> str:
    # RouterBench stores prompts as a Python list literal of one string: "['...']".
    s = raw
    if len(s) >= 4 and s[:2] in ("['", '["') and s[-2:] in ("']", '"]'):
        s = s[2:-2]
        s = s.replace("\\n", "\n").replace("\\'", "'").replace('\\"', '"').replace("\\\\", "\\")
    return s


def _outcome_value(value: str) -> float | None:
    v = value.strip()
    if v == "":
        return None
    if v in ("True", "true"):
        return 1.0
    if v in ("False", "false"):
        return 0.0
    return float(v)


def load_routerbench_csv(path: Path) -> OutcomeSet:
    """Load a RouterBench CSV (per-model outcome and ``|total_cost`` columns)."""
    fields, rows = _read_csv(path)
    models = [f.split("|")[0] for f in fields if f.endswith("|total_cost")]
    if not models:
        raise DataError(f"{path}: no '<model>|total_cost' columns: not a RouterBench CSV")
    n, m = len(rows), len(models)
    correct = np.zeros((n, m))
    cost = np.zeros((n, m))
    out_tok = np.full((n, m), np.nan)
    n_empty = 0
    for i, row in enumerate(rows):
        for j, model in enumerate(models):
            val = _outcome_value(row.get(model, ""))
            if val is None:
                n_empty += 1
                val = 0.0
            correct[i, j] = val
            c = row.get(f"{model}|total_cost", "").strip()
            cost[i, j] = float(c) if c else np.nan
            resp = row.get(f"{model}|model_response")
            if resp is not None:
                out_tok[i, j] = estimate_tokens(resp)
    prompts = [_clean_prompt(r["prompt"]) for r in rows]
    # Missing costs: the model's median cost per prompt token on this file.
    for j in range(m):
        bad = np.isnan(cost[:, j])
        if bad.any():
            toks = np.array([estimate_tokens(p) for p in prompts], dtype=float)
            ok = ~bad
            rate = float(np.median(cost[ok, j] / toks[ok])) if ok.any() else 0.0
            cost[bad, j] = rate * toks[bad]
    return OutcomeSet(
        name=path.stem,
        ids=[r.get("sample_id") or str(i) for i, r in enumerate(rows)],
        prompts=prompts,
        tasks=[r.get("eval_name") or path.stem for r in rows],
        models=models,
        correct=correct,
        cost=cost,
        out_tokens=out_tok,
        n_empty=n_empty,
    )


def load_routellm_csv(path: Path) -> OutcomeSet:
    """Load RouteLLM's MMLU responses CSV (``prompt, <model>..., subject``)."""
    fields, rows = _read_csv(path)
    models = [f for f in fields if f not in ("prompt", "subject", "") and not f.startswith("Unn")]
    if "prompt" not in fields or len(models) < 2:
        raise DataError(f"{path}: expected columns prompt, <model>, <model>[, subject]")
    n, m = len(rows), len(models)
    correct = np.zeros((n, m))
    cost = np.zeros((n, m))
    n_empty = 0
    prompts = [r["prompt"] for r in rows]
    for i, row in enumerate(rows):
        toks = estimate_tokens(prompts[i])
        for j, model in enumerate(models):
            val = _outcome_value(row[model])
            if val is None:
                n_empty += 1
                val = 0.0
            correct[i, j] = val
            cost[i, j] = _price_cost(model, toks, 1.0, str(path))
    return OutcomeSet(
        name=path.stem,
        ids=[str(i) for i in range(n)],
        prompts=prompts,
        tasks=[r.get("subject") or "mmlu" for r in rows],
        models=models,
        correct=correct,
        cost=cost,
        cost_source="list price x estimated tokens (1 output token)",
        out_tokens=np.ones((n, m)),
        n_empty=n_empty,
    )


def load_llmrouter_json(path: Path, out_tokens: int = 64) -> OutcomeSet:
    """Load llmrouter's ``[{question, scores}]`` JSON; prices from llm_candidates.json."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON: {err}") from None
    if not isinstance(data, list) or not data or "scores" not in data[0]:
        raise DataError(f"{path}: expected a list of {{question, scores}} records")
    prices: dict[str, tuple[float, float]] = {}
    cand = path.with_name("llm_candidates.json")
    if cand.is_file():
        for name, spec in json.loads(cand.read_text(encoding="utf-8")).items():
            prices[name] = (float(spec["input_price"]), float(spec["output_price"]))
    models = sorted(data[0]["scores"])
    n, m = len(data), len(models)
    correct = np.zeros((n, m))
    cost = np.zeros((n, m))
    prompts = [str(r.get("question", "")) for r in data]
    for i, rec in enumerate(data):
        toks = estimate_tokens(prompts[i])
        for j, model in enumerate(models):
            correct[i, j] = float(rec["scores"].get(model) or 0.0)
            pin, pout = prices.get(model, LIST_PRICES.get(model, (1.0, 1.0)))
            cost[i, j] = (toks * pin + out_tokens * pout) / 1e6
    tasks = [str(r.get("task_name") or r.get("task") or r.get("cluster_id", "all")) for r in data]
    return OutcomeSet(
        name=path.stem,
        ids=[str(r.get("id", i)) for i, r in enumerate(data)],
        prompts=prompts,
        tasks=tasks,
        models=models,
        correct=correct,
        cost=cost,
        cost_source=f"list price x estimated tokens ({out_tokens} output tokens)",
        out_tokens=np.full((n, m), float(out_tokens)),
    )


def _replay_records(rows: list[tuple[int, ReplayRow]], path: Path) -> list[_Record]:
    """Group replay rows by id (first-seen order) into outcome records."""
    grouped: dict[str, _Record] = {}
    for lineno, row in rows:
        key = str(row.id)
        prompt = row.prompt_text()
        if not prompt:
            raise DataError(
                f"{path}:{lineno}: row {key!r} has neither 'prompt' nor a user turn in "
                "'messages': give one"
            )
        outcome = _Outcome(
            correct=row.score,
            cost=row.cost_usd,
            input_tokens=row.input_tokens,
            output_tokens=row.output_tokens,
            confidence=row.confidence,
        )
        rec = grouped.get(key)
        if rec is None:
            grouped[key] = _Record(
                id=key, prompt=prompt, outcomes={row.model: outcome}, task=row.task
            )
        else:
            rec.outcomes[row.model] = outcome
    models = {m for rec in grouped.values() for m in rec.outcomes}
    complete = [rec for rec in grouped.values() if set(rec.outcomes) == models]
    if len(complete) < len(grouped):
        # A collection stopped by its budget leaves prompts some models never answered:
        # an unanswered call is not a wrong answer, so those prompts are left out.
        log.warning(
            "%s: %d of %d prompts lack a row for some model (unfinished collection): "
            "left out; re-run `aco collect` to finish them",
            path,
            len(grouped) - len(complete),
            len(grouped),
        )
    return complete


def _parse_jsonl(path: Path) -> list[_Record]:
    records: list[_Record] = []
    replay: list[tuple[int, ReplayRow]] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}:{lineno}: not valid JSON ({err.msg})") from None
            is_replay = isinstance(obj, dict) and "outcomes" not in obj and "model" in obj
            try:
                if is_replay:
                    replay.append((lineno, ReplayRow.model_validate(obj)))
                else:
                    records.append(_Record.model_validate(obj))
            except ValidationError as err:
                first = err.errors()[0]
                loc = ".".join(str(p) for p in first["loc"])
                raise DataError(f"{path}:{lineno}: field {loc!r}: {first['msg']}") from None
            if records and replay:
                raise DataError(
                    f"{path}:{lineno}: mixes outcome records ('outcomes') and replay rows "
                    "('model', 'score'): keep one kind per file"
                )
    if replay:
        return _replay_records(replay, path)
    return records


def load_jsonl(path: Path) -> OutcomeSet:
    """Load the JSONL outcomes or replay format (see the module docstring)."""
    records = _parse_jsonl(path)
    if not records:
        raise DataError(f"{path}: no records")
    models: list[str] = []
    for rec in records:
        for name in rec.outcomes:
            if name not in models:
                models.append(name)
    n, m = len(records), len(models)
    correct = np.zeros((n, m))
    cost = np.zeros((n, m))
    out_tok = np.full((n, m), np.nan)
    conf = np.full((n, m), np.nan)
    n_empty = 0
    estimated = False
    for i, rec in enumerate(records):
        for j, model in enumerate(models):
            o = rec.outcomes.get(model)
            if o is None or o.correct is None:
                n_empty += 1
            else:
                correct[i, j] = o.correct
            if o is not None and o.output_tokens is not None:
                out_tok[i, j] = o.output_tokens
            if o is not None and o.confidence is not None:
                conf[i, j] = o.confidence
            if o is not None and o.cost is not None:
                cost[i, j] = o.cost
            else:
                estimated = True
                in_t = o.input_tokens if o and o.input_tokens else estimate_tokens(rec.prompt)
                out_t = o.output_tokens if o and o.output_tokens else 1
                cost[i, j] = _price_cost(model, in_t, out_t, f"{path}:{i + 1}")
    return OutcomeSet(
        name=path.stem,
        ids=[str(r.id) for r in records],
        prompts=[r.prompt for r in records],
        tasks=[r.task or "all" for r in records],
        models=models,
        correct=correct,
        cost=cost,
        cost_source="observed" if not estimated else "observed or list price x tokens",
        out_tokens=out_tok,
        n_empty=n_empty,
        confidence=conf if np.isfinite(conf).any() else None,
    )


def load_file(path: str | Path) -> OutcomeSet:
    """Load one outcomes file, detecting its format from the extension and header.

    Raises:
        DataError: missing file, a directory, bytes that are not UTF-8 (the line is named),
            or content that is not outcomes.
    """
    p = Path(path)
    if p.is_dir():
        raise DataError(f"{p}: is a directory: give the outcomes file itself")
    if not p.is_file():
        raise DataError(f"{p}: no such file")
    try:
        return _load_file(p)
    except UnicodeDecodeError as err:
        raw = p.read_bytes()
        # The error's offset is within a decode buffer: find the first bad line ourselves.
        line = next((i for i, b in enumerate(raw.split(b"\n"), 1) if not _is_utf8(b)), "?")
        raise DataError(f"{p}:{line}: not UTF-8 text: save the file as UTF-8") from err


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _load_file(p: Path) -> OutcomeSet:
    suffix = p.suffix.lower()
    if suffix == ".jsonl":
        return load_jsonl(p)
    if suffix == ".json":
        return load_llmrouter_json(p)
    if suffix == ".csv":
        with p.open(newline="", encoding="utf-8") as fh:
            header = fh.readline()
        if "|total_cost" in header:
            return load_routerbench_csv(p)
        if header.startswith("prompt,"):
            return load_routellm_csv(p)
        raise DataError(
            f"{p}: CSV header is neither RouterBench (<model>|total_cost) nor RouteLLM (prompt,...)"
        )
    raise DataError(f"{p}: unknown format: use .csv (RouterBench/RouteLLM), .jsonl or .json")


def concat(sets: list[OutcomeSet]) -> OutcomeSet:
    """Join sets with the same models (in any column order) into one."""
    if not sets:
        raise DataError("no data files given")
    models = sets[0].models
    parts_c, parts_k, parts_o, parts_w, parts_f = [], [], [], [], []
    for s in sets:
        if sorted(s.models) != sorted(models):
            raise DataError(
                f"{s.name}: its models {sorted(s.models)} differ from {sets[0].name}'s "
                f"{sorted(models)}: files trained or evaluated together must share models"
            )
        order = [s.models.index(m) for m in models]
        parts_c.append(s.correct[:, order])
        parts_k.append(s.cost[:, order])
        ot = s.out_tokens if s.out_tokens is not None else np.full(s.correct.shape, np.nan)
        parts_o.append(ot[:, order])
        parts_w.append(s.weights if s.weights is not None else np.ones(len(s)))
        cf = s.confidence if s.confidence is not None else np.full(s.correct.shape, np.nan)
        parts_f.append(cf[:, order])
    return OutcomeSet(
        name="+".join(s.name for s in sets),
        ids=[i for s in sets for i in s.ids],
        prompts=[p for s in sets for p in s.prompts],
        tasks=[t for s in sets for t in s.tasks],
        models=list(models),
        correct=np.vstack(parts_c),
        cost=np.vstack(parts_k),
        cost_source=", ".join(sorted({s.cost_source for s in sets})),
        out_tokens=np.vstack(parts_o),
        n_empty=sum(s.n_empty for s in sets),
        weights=None if all(s.weights is None for s in sets) else np.concatenate(parts_w),
        confidence=None if all(s.confidence is None for s in sets) else np.vstack(parts_f),
    )


def load_outcomes(paths: list[str] | list[Path]) -> OutcomeSet:
    """Load and join several outcomes files (same models in each).

    Usage::

        data = load_outcomes(["a.csv", "b.csv"])
    """
    return concat([load_file(p) for p in paths])
