"""Recordings of real models' answers: load once, look up by prompt in O(1).

Two formats (detected from the extension):

* RouterBench CSV (``sample_id, prompt, <model>, <model>|model_response,
  <model>|total_cost``): every model column is a recorded answer; token counts are estimated
  from the texts (chars / 4), the cost is the recorded one, the outcome column is the score
  (an empty outcome is kept as ``None`` and counted wrong).
* Replay JSONL, one answer a line::

      {"id": "q1", "prompt": "...", "model": "gpt-4o", "response": "...",
       "input_tokens": 120, "output_tokens": 40, "cost_usd": 0.0009, "score": 1.0,
       "latency_s": 0.8}

  (``messages`` — a list of ``{"role", "content"}`` — instead of ``prompt`` for a chat;
  ``latency_s`` and ``score`` optional). ``aco collect`` writes this format; each line is
  parsed by ``datasets.ReplayRow`` (the one parser ``aco train`` uses too), and a replay tier
  also requires the answer's ``response``, tokens and cost.

The key of a prompt is ``normalize_prompt`` of its last user message (case, runs of spaces
and blank lines do not matter). A recording is read on its first lookup, once per process
for a given file state (path, size, mtime), however many tiers share it.

Usage::

    from aco_langchain.replay.recording import open_recording
    rec = open_recording(["routerbench_sample.csv"])
    ans = rec.lookup("Please answer with the letter ...", "gpt-4-1106-preview")
    ans.response, ans.cost_usd, ans.score
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from aco_langchain.errors import DataError
from aco_langchain.routing.features import normalize_prompt
from aco_langchain.routing.training.datasets import (
    ReplayRow,
    _clean_prompt,
    _outcome_value,
    _read_csv,
    estimate_tokens,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecordedAnswer:
    """One model's recorded answer to one prompt."""

    id: str
    model: str
    response: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    score: float | None
    """The recorded outcome in [0, 1]; None when the recording has none (counted wrong)."""
    latency_s: float | None = None
    source: str = ""

    @property
    def correct(self) -> bool:
        """Right by the recorded outcome (a score of at least 0.5)."""
        return self.score is not None and self.score >= 0.5


@dataclass
class RecordedPrompt:
    """A recorded prompt and every model's answer to it."""

    id: str
    key: str
    messages: list[tuple[str, str]]
    """(role, content) pairs; a plain prompt is one ``("user", prompt)``."""
    answers: dict[str, RecordedAnswer] = field(default_factory=dict)

    @property
    def prompt(self) -> str:
        """The last user message (what the key is made from)."""
        return last_user_text(self.messages)


def last_user_text(messages: Sequence[tuple[str, str]]) -> str:
    """The content of the last user/human message (else the last message)."""
    for role, content in reversed(messages):
        if role in ("user", "human"):
            return content
    return messages[-1][1] if messages else ""


def prompt_key(text: str) -> str:
    """The lookup key of a prompt: :func:`normalize_prompt` of its text."""
    return normalize_prompt(text)


#: What a replay tier answers with: a row without them cannot be replayed.
_ANSWER_FIELDS = ("response", "input_tokens", "output_tokens", "cost_usd")


def _answer_problem(row: ReplayRow) -> tuple[str, str] | None:
    """(field, what is wrong) when a replay row cannot answer as a replay tier."""
    if (row.prompt is None) == (row.messages is None):
        return "prompt", 'give exactly one of "prompt" and "messages"'
    if row.messages is not None and not row.messages:
        return "messages", '"messages" is empty'
    for name in _ANSWER_FIELDS:
        if name not in row.model_fields_set or getattr(row, name) is None:
            return name, "Field required (a replay tier answers with the recorded value)"
    return None


class Recording:
    """Recorded answers of one or several files, indexed by prompt key and model.

    Loaded on the first lookup (thread-safe). Use :func:`open_recording` to share one per
    file set.

    Example:
        ```python
        rec = Recording(["answers.jsonl"])
        rec.models()          # ['gpt-4o', ...]
        rec.lookup("What is 2+2?", "gpt-4o")
        ```
    """

    def __init__(self, paths: Sequence[str | Path]) -> None:
        if not paths:
            raise DataError("a replay recording needs at least one file: set recording: PATH")
        self.paths = [Path(p) for p in paths]
        self._lock = threading.Lock()
        self._prompts: dict[str, RecordedPrompt] | None = None
        self._models: list[str] = []

    def _index(self) -> dict[str, RecordedPrompt]:
        if self._prompts is None:
            with self._lock:
                if self._prompts is None:
                    prompts: dict[str, RecordedPrompt] = {}
                    models: list[str] = []
                    for path in self.paths:
                        for rp in _load_path(path):
                            _merge(prompts, rp, path)
                            for m in rp.answers:
                                if m not in models:
                                    models.append(m)
                    if not prompts:
                        raise DataError(f"{', '.join(map(str, self.paths))}: no recorded answers")
                    logger.info(
                        "replay recording %s: %d prompts, %d models",
                        ", ".join(map(str, self.paths)),
                        len(prompts),
                        len(models),
                    )
                    self._models = models
                    self._prompts = prompts
        return self._prompts

    @property
    def loaded(self) -> bool:
        """Have the files been read?"""
        return self._prompts is not None

    def load(self) -> Recording:
        """Read the files now (else the first lookup does).

        Raises:
            DataError: a missing or malformed file (file, line and field named).
        """
        self._index()
        return self

    def models(self) -> list[str]:
        """The recorded models, in file order."""
        self._index()
        return list(self._models)

    def prompts(self) -> list[RecordedPrompt]:
        """Every recorded prompt, in file order."""
        return list(self._index().values())

    def __len__(self) -> int:
        return len(self._index())

    def lookup(self, text: str, model: str) -> RecordedAnswer | None:
        """``model``'s recorded answer to the prompt whose last user message is ``text``."""
        found = self._index().get(prompt_key(text))
        return None if found is None else found.answers.get(model)

    def miss_reason(self, text: str, model: str) -> str | None:
        """Why ``model`` has no recorded answer to ``text``, or None when it has one."""
        index = self._index()
        found = index.get(prompt_key(text))
        if found is None:
            return f"prompt not in the replay recording ({len(index)} prompts)"
        if model not in found.answers:
            return f"no recorded answer of {model} to this prompt"
        return None


def _merge(into: dict[str, RecordedPrompt], rp: RecordedPrompt, path: Path) -> None:
    have = into.get(rp.key)
    if have is None:
        into[rp.key] = rp
        return
    for model, ans in rp.answers.items():
        if model in have.answers:
            # Same prompt twice for one model: the first recording wins (said, not hidden).
            logger.info("%s: prompt %s already recorded for %s: kept the first", path, rp.id, model)
            continue
        have.answers[model] = ans


def _load_path(path: Path) -> list[RecordedPrompt]:
    if path.is_dir():
        raise DataError(f"{path}: is a directory: give the recording file itself")
    if not path.is_file():
        raise DataError(f"{path}: no such recording: give a RouterBench CSV or a replay JSONL")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return load_routerbench_answers(path)
        if suffix == ".jsonl":
            return load_replay_jsonl(path)
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text: save the file as UTF-8") from err
    raise DataError(f"{path}: unknown recording format: use .csv (RouterBench) or .jsonl")


def load_routerbench_answers(path: Path) -> list[RecordedPrompt]:
    """Every model's recorded answer in a RouterBench CSV.

    Raises:
        DataError: the file has no ``<model>|model_response`` columns.
    """
    fields, rows = _read_csv(path)
    models = [f.split("|")[0] for f in fields if f.endswith("|model_response")]
    if not models or "prompt" not in fields:
        raise DataError(
            f"{path}: no 'prompt' and '<model>|model_response' columns: not a RouterBench CSV"
        )
    out: list[RecordedPrompt] = []
    for i, row in enumerate(rows):
        prompt = _clean_prompt(row["prompt"])
        sid = str(row.get("sample_id") or i)
        rp = RecordedPrompt(id=sid, key=prompt_key(prompt), messages=[("user", prompt)])
        in_tok = estimate_tokens(prompt)
        for model in models:
            response = _clean_prompt(row.get(f"{model}|model_response") or "")
            try:
                cost = float(row.get(f"{model}|total_cost") or "nan")
                score = _outcome_value(row.get(model, ""))
            except ValueError as err:
                raise DataError(f"{path}:{i + 2}: {model}: {err}: fix the number") from err
            if cost != cost:  # NaN: no recorded cost, so no recorded call
                continue
            rp.answers[model] = RecordedAnswer(
                id=sid,
                model=model,
                response=response,
                input_tokens=in_tok,
                output_tokens=estimate_tokens(response),
                cost_usd=cost,
                score=score,
                source=str(path),
            )
        out.append(rp)
    return out


def load_replay_jsonl(path: Path) -> list[RecordedPrompt]:
    """The answers of a replay JSONL (see the module docstring), grouped by prompt.

    Raises:
        DataError: a line that is not JSON or misses a field (file, line and field named).
    """
    by_key: dict[str, RecordedPrompt] = {}
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = ReplayRow.model_validate_json(line)
            except ValidationError as err:
                first = err.errors()[0]
                loc = ".".join(str(p) for p in first["loc"]) or "line"
                raise DataError(f"{path}:{lineno}: field {loc!r}: {first['msg']}") from None
            problem = _answer_problem(rec)
            if problem is not None:
                raise DataError(f"{path}:{lineno}: field {problem[0]!r}: {problem[1]}")
            messages = rec.chat()
            rp = RecordedPrompt(
                id=str(rec.id), key=prompt_key(last_user_text(messages)), messages=messages
            )
            rp.answers[rec.model] = RecordedAnswer(
                id=str(rec.id),
                model=rec.model,
                response=rec.response,
                input_tokens=int(rec.input_tokens or 0),
                output_tokens=int(rec.output_tokens or 0),
                cost_usd=float(rec.cost_usd or 0.0),
                score=rec.score,
                latency_s=rec.latency_s,
                source=str(path),
            )
            _merge(by_key, rp, path)
    return list(by_key.values())


def _file_state(path: Path) -> tuple[str, int, int]:
    try:
        st = path.stat()
    except OSError:
        return (str(path), -1, -1)  # reported when the recording is first read
    return (str(path.resolve()), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=16)
def _open_cached(states: tuple[tuple[str, int, int], ...]) -> Recording:
    return Recording([s[0] for s in states])


def open_recording(paths: str | Path | Sequence[str | Path]) -> Recording:
    """The shared :class:`Recording` of ``paths`` (one per file state per process).

    Args:
        paths: one file or several (RouterBench CSV, replay JSONL).

    Returns:
        The recording; files are read on its first lookup.

    Raises:
        DataError: no path given.

    Example:
        ```python
        rec = open_recording("examples/replay.jsonl")
        ```
    """
    items: list[Any] = [paths] if isinstance(paths, str | Path) else list(paths)
    if not items:
        raise DataError("a replay recording needs at least one file: set recording: PATH")
    return _open_cached(tuple(_file_state(Path(p)) for p in items))
