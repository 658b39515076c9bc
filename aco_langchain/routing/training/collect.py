"""``aco collect``: run a prompt set through chosen tiers, record outcomes as replay JSONL.

Each (prompt, tier) is one call of ``ACORouterChatModel`` with ``force_tier``, so every
call is priced, written to the ledger and held against the collection's budget (one run
key per output file; ``on_budget_exceeded: raise`` so a call over budget stops the
collection instead of being served by another tier). Each answer is scored and appended
to the output as one replay row (``datasets.ReplayRow``: ``id``, ``prompt``|``messages``,
``model``, ``response``, ``input_tokens``, ``output_tokens``, ``cost_usd``, ``score``,
``latency_s``; plus ``tier``, ``task``, and ``judge_cost_usd`` for a judge), which is what
``aco train``/``aco calibrate`` read and ``aco replay`` replays. Re-running skips the
(id, model) pairs already in the output; a failed call is logged and not written, so a
re-run retries it.

Prompt files: JSONL/JSON (``prompt`` or ``messages`` or ``input``/``question``, optional
``id``, ``reference``/``answer``/``expected``, ``task``), CSV with the same columns, or a
LangSmith dataset export (``{"inputs": {...}, "outputs": {...}}`` per example).

Usage::

    from aco_langchain.routing.training.collect import load_prompts, collect
    items = load_prompts("prompts.jsonl")
    report = asyncio.run(collect(items, llm, tiers=[1, 2, 4], scorer=parse_scorer("exact"),
                                 out="collected.jsonl"))
"""

from __future__ import annotations

import asyncio
import csv
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aco_langchain.errors import ACOError, BudgetExceededError, DataError
from aco_langchain.routing.training.datasets import estimate_tokens
from aco_langchain.routing.training.scorers import (
    JUDGE_PROMPT,
    JudgeSpec,
    RecordedSpec,
    Scorer,
    judge_verdict,
)

log = logging.getLogger(__name__)

_PROMPT_KEYS = ("prompt", "question", "input", "query", "text")
_REFERENCE_KEYS = ("reference", "answer", "expected", "output", "ground_truth", "label")


@dataclass(frozen=True)
class PromptItem:
    """One prompt to collect: text or chat messages, an optional reference answer."""

    id: str
    prompt: str | None = None
    messages: list[dict[str, Any]] | None = None
    reference: str | None = None
    task: str | None = None

    def text(self) -> str:
        """The prompt text (the last user turn for messages)."""
        if self.prompt is not None:
            return self.prompt
        for m in reversed(self.messages or []):
            if m.get("role") in ("user", "human"):
                return str(m.get("content", ""))
        return ""


def _first(obj: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for k in keys:
        if obj.get(k) is not None:
            return obj[k]
    return None


def _item(obj: Any, n: int, where: str) -> PromptItem:
    if not isinstance(obj, dict):
        raise DataError(f"{where}: each prompt must be an object with a 'prompt' field")
    inputs: dict[str, Any] = obj
    outputs: dict[str, Any] = obj
    if isinstance(obj.get("inputs"), dict):  # LangSmith example export
        inputs = obj["inputs"]
        raw_out = obj.get("outputs")
        outputs = raw_out if isinstance(raw_out, dict) else {}
    messages = inputs.get("messages")
    prompt = _first(inputs, _PROMPT_KEYS)
    if prompt is None and messages is None:
        strings = [v for v in inputs.values() if isinstance(v, str)]
        if len(strings) == 1:  # a one-field input, whatever its name
            prompt = strings[0]
    if prompt is None and not isinstance(messages, list):
        raise DataError(f"{where}: no prompt: give 'prompt' (or 'question'/'input') or 'messages'")
    ref = _first(outputs, _REFERENCE_KEYS)
    if ref is None and outputs is not obj:
        values = [v for v in outputs.values() if isinstance(v, str | int | float)]
        ref = values[0] if len(values) == 1 else None
    return PromptItem(
        id=str(obj.get("id", n)),
        prompt=None if prompt is None else str(prompt),
        messages=messages if prompt is None else None,
        reference=None if ref is None else str(ref),
        task=None if obj.get("task") is None else str(obj["task"]),
    )


def load_prompts(path: str | Path) -> list[PromptItem]:
    """Read a prompt file (JSONL, JSON list, CSV, LangSmith export).

    Raises:
        DataError: a missing or unreadable file, a row without a prompt, duplicate ids.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such prompt file")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{p}: not UTF-8 text: save it as UTF-8") from err
    items: list[PromptItem] = []
    if p.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        for n, row in enumerate(reader):
            items.append(_item({k: v for k, v in row.items() if v != ""}, n, f"{p}:{n + 2}"))
    elif p.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataError(f"{p}: not valid JSON ({err.msg})") from None
        if isinstance(data, dict) and isinstance(data.get("examples"), list):
            data = data["examples"]
        if not isinstance(data, list):
            raise DataError(f"{p}: expected a list of prompts (or {{'examples': [...]}})")
        items = [_item(obj, n, f"{p}[{n}]") for n, obj in enumerate(data)]
    else:
        for n, line in enumerate(text.splitlines()):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{p}:{n + 1}: not valid JSON ({err.msg})") from None
            items.append(_item(obj, len(items), f"{p}:{n + 1}"))
    if not items:
        raise DataError(f"{p}: no prompts")
    seen: set[str] = set()
    for it in items:
        if it.id in seen:
            raise DataError(f"{p}: id {it.id!r} appears twice: ids must be unique")
        seen.add(it.id)
    return items


def done_pairs(out: str | Path) -> set[tuple[str, str]]:
    """(id, model) pairs already in the output file (what a re-run skips)."""
    p = Path(out)
    done: set[tuple[str, str]] = set()
    if not p.is_file():
        return done
    with p.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                done.add((str(row["id"]), str(row["model"])))
            except (json.JSONDecodeError, KeyError, TypeError):
                # a line cut by a crash mid-write: its pair is simply collected again
                log.warning("%s:%d: unreadable row skipped (it will be collected again)", p, lineno)
    return done


@dataclass
class CollectReport:
    """What a collection did (``aco collect --json``)."""

    out: str
    written: int = 0
    skipped: int = 0
    failed: int = 0
    stopped_by_budget: bool = False
    cost_usd: float = 0.0
    judge_cost_usd: float = 0.0
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able."""
        return {
            "ok": self.failed == 0 and not self.stopped_by_budget,
            "out": self.out,
            "written": self.written,
            "skipped": self.skipped,
            "failed": self.failed,
            "stopped_by_budget": self.stopped_by_budget,
            "cost_usd": round(self.cost_usd, 8),
            "judge_cost_usd": round(self.judge_cost_usd, 8),
            "errors": self.errors[:10],
        }


def _messages(item: PromptItem) -> Any:
    if item.prompt is not None:
        return item.prompt
    from langchain_core.messages import convert_to_messages

    return convert_to_messages(item.messages or [])


def _meta(msg: Any) -> tuple[float, int | None, int | None, str | None]:
    aco = (getattr(msg, "response_metadata", None) or {}).get("aco") or {}
    usage = getattr(msg, "usage_metadata", None) or {}
    return (
        float(aco.get("cost_usd") or 0.0),
        usage.get("input_tokens"),
        usage.get("output_tokens"),
        aco.get("model_id"),
    )


def _text(msg: Any) -> str:
    content = getattr(msg, "content", msg)
    if isinstance(content, list):
        return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
    return str(content)


async def collect(
    items: list[PromptItem],
    llm: Any,
    tiers: list[int],
    scorer: Scorer,
    out: str | Path,
    concurrency: int = 4,
    on_progress: Callable[[int], None] | None = None,
) -> CollectReport:
    """Run ``items`` through ``tiers`` of ``llm`` and append scored replay rows to ``out``.

    Args:
        items: The prompts (``load_prompts``).
        llm: An ``ACORouterChatModel`` (its ``run_key`` and config carry the budget).
        tiers: Tier numbers to collect.
        scorer: A score function or a ``JudgeSpec`` (``scorers.parse_scorer``).
        out: The replay JSONL (appended; existing (id, model) pairs are skipped).
        concurrency: Calls in flight at once.
        on_progress: Called with 1 after each (prompt, tier), done or skipped.

    Returns:
        The ``CollectReport``.

    Raises:
        DataError: the scorer needs a reference some prompt lacks (checked before any call).

    Example:
        ```python
        report = asyncio.run(collect(load_prompts("p.jsonl"), llm, [1, 4], exact, "o.jsonl"))
        ```
    """
    needs_ref = isinstance(scorer, JudgeSpec) or getattr(scorer, "__name__", "") in (
        "exact",
        "contains",
    )
    missing = [it.id for it in items if it.reference is None]
    if needs_ref and missing:
        raise DataError(
            f"prompts {missing[:5]} have no reference answer, which the scorer needs: give "
            "each a 'reference' field (or use regex:PAT without a group, or module:function)"
        )
    report = CollectReport(out=str(out))
    done = done_pairs(out)
    models = {n: llm.config.tier(n).model_id for n in tiers}
    todo = []
    for it in items:
        for n in tiers:
            if (it.id, models[n]) in done:
                report.skipped += 1
                if on_progress:
                    on_progress(1)
            else:
                todo.append((it, n))
    sem = asyncio.Semaphore(max(1, concurrency))
    stop = asyncio.Event()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with Path(out).open("a", encoding="utf-8") as fh:

        async def one(it: PromptItem, n: int) -> None:
            async with sem:
                if stop.is_set():
                    return
                try:
                    row = await _call(it, n, llm, scorer, models[n])
                except BudgetExceededError as err:
                    if not stop.is_set():
                        log.warning("collection stopped by its budget: %s", err)
                        report.errors.append(str(err))
                    stop.set()
                    report.stopped_by_budget = True
                    return
                except ACOError as err:
                    report.failed += 1
                    report.errors.append(f"{it.id} tier {n}: {err}")
                    log.warning(
                        "prompt %s on tier %d failed (a re-run retries it): %s", it.id, n, err
                    )
                    return
                finally:
                    if on_progress:
                        on_progress(1)
                fh.write(json.dumps(row) + "\n")
                fh.flush()
                report.written += 1
                report.cost_usd += row["cost_usd"]
                report.judge_cost_usd += row.get("judge_cost_usd", 0.0)

        await asyncio.gather(*(one(it, n) for it, n in todo))
    return report


async def _call(it: PromptItem, n: int, llm: Any, scorer: Scorer, model: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    msg = await llm.ainvoke(_messages(it), force_tier=n)
    latency = time.perf_counter() - t0
    cost, in_tok, out_tok, model_id = _meta(msg)
    if model_id and model_id != model:
        log.warning("prompt %s: tier %d answered as %s, not %s", it.id, n, model_id, model)
    answer = _text(msg)
    row: dict[str, Any] = {"id": it.id}
    if it.prompt is not None:
        row["prompt"] = it.prompt
    else:
        row["messages"] = it.messages
    judge_cost = 0.0
    if isinstance(scorer, JudgeSpec):
        verdict_msg = await llm.ainvoke(
            JUDGE_PROMPT.format(prompt=it.text(), reference=it.reference, answer=answer),
            force_tier=scorer.tier,
        )
        judge_cost = _meta(verdict_msg)[0]
        score = judge_verdict(_text(verdict_msg))
        if score is None:
            log.warning("prompt %s: the judge gave no 0/1 verdict: scored 0", it.id)
            score = 0.0
    elif isinstance(scorer, RecordedSpec):
        recorded = ((getattr(msg, "response_metadata", None) or {}).get("replay") or {}).get(
            "score"
        )
        if recorded is None:
            raise DataError(
                f"prompt {it.id} on tier {n}: --scorer recorded needs a replay tier with a "
                "recorded score for this prompt: use another scorer for live tiers"
            )
        score = float(recorded)
    else:
        score = float(scorer(answer, it.reference, it.text()))
    row.update(
        {
            "model": model,
            "tier": n,
            "response": answer,
            # a tier that reports no usage: estimated, so every row has counts (the
            # replay loader requires them)
            "input_tokens": in_tok if in_tok is not None else estimate_tokens(it.text()),
            "output_tokens": out_tok if out_tok is not None else estimate_tokens(answer),
            "cost_usd": cost,
            "score": score,
            "latency_s": round(latency, 4),
        }
    )
    if it.task is not None:
        row["task"] = it.task
    if isinstance(scorer, JudgeSpec):
        row["judge_cost_usd"] = judge_cost
    return row
