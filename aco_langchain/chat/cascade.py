"""Confidence cascade: is the cheap tier's answer good enough, or should a stronger tier redo it?

Pure functions, no I/O (except reading the shipped calibration file once, lazily).

Confidence from logprobs (``confidence_from_logprobs``), with per-token probabilities
``p_i = exp(logprob_i)`` over the ``n`` answer tokens::

    geo = exp(mean_i logprob_i)        # geometric-mean token probability (length-normalised)
    low = quantile(p, 0.10)            # the 10th-percentile token probability (linear interp.)
    confidence = geo ** (1 - ALPHA) * low ** ALPHA      with ALPHA = 0.5

``geo`` measures how sure the model was on average and does not shrink with answer length
(unlike the sequence probability); ``low`` catches the few uncertain tokens where a short
factual answer usually goes wrong (for answers under 10 tokens it is close to the minimum).
Both lie in [0, 1], so their weighted geometric mean does too.

Without logprobs (``answer_format_confidence``) only the answer's form can be checked: empty,
refusal, truncation, hedging, degenerate repetition, a numeric question without a number.
This is labelled ``method="format_check"``, is capped at ``FORMAT_CHECK_MAX`` and the
cascade's reason says so: it is never a silent pass.

The escalation threshold: ``CascadeSettings.confidence_threshold`` when set, else the
calibrated default in ``aco_langchain/data/cascade_calibration.json``, produced by
``benchmarks/calibrate_cascade.py`` on the real local tier (see that file for the procedure).

Usage::

    from aco_langchain.chat.cascade import cascade_step
    res = cascade_step(request="What is 7*8?", initial_tier=1,
                       cheap_logprobs=msg.response_metadata["logprobs"], cheap_response=msg)
    if res.escalated:
        answer = call_tier(res.final_tier, request)
"""

from __future__ import annotations

import functools
import json
import math
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aco_langchain.config import ACOConfig

__all__ = [
    "ALPHA",
    "FALLBACK_THRESHOLD",
    "FORMAT_CHECK_MAX",
    "CascadeResult",
    "ConfidenceEstimate",
    "TokenLogprob",
    "answer_format_confidence",
    "calibrated_threshold",
    "cascade_step",
    "confidence_from_logprobs",
    "normalize_logprobs",
    "response_text",
]

#: Weight of the low-quantile term in the confidence formula.
ALPHA = 0.5
#: The quantile of token probabilities used as the "weakest tokens" term.
LOW_QUANTILE = 0.10
#: Highest confidence a format check alone can give (it cannot see correctness).
FORMAT_CHECK_MAX = 0.75
#: Used only if the shipped calibration file is missing or unreadable (with a warning).
FALLBACK_THRESHOLD = 0.5
#: Logprobs below this are clipped (llama.cpp / OpenAI may send -inf or -9999).
MIN_LOGPROB = -50.0

_CALIBRATION_FILE = "cascade_calibration.json"


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token and its log-probability; ``top`` holds the alternatives."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()

    @property
    def prob(self) -> float:
        """``exp(logprob)``."""
        return math.exp(self.logprob)


@dataclass(frozen=True)
class ConfidenceEstimate:
    """A confidence in [0, 1], how it was obtained (``logprobs`` / ``format_check``) and why."""

    value: float
    method: str
    n_tokens: int
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CascadeResult:
    """The cascade's decision: escalate or not, to which tier/model, and why."""

    escalated: bool
    final_tier: int
    model_id: str
    confidence: float
    reason: str
    method: str = "logprobs"
    threshold: float = FALLBACK_THRESHOLD

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the fields."""
        return {
            "escalated": self.escalated,
            "final_tier": self.final_tier,
            "model_id": self.model_id,
            "confidence": self.confidence,
            "reason": self.reason,
            "method": self.method,
            "threshold": self.threshold,
        }


# --------------------------------------------------------------------------- normalisation


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def _clip(lp: Any) -> float | None:
    try:
        v = float(lp)
    except (TypeError, ValueError):
        return None
    if math.isnan(v):
        return None
    return max(MIN_LOGPROB, min(0.0, v))


def _token(entry: Any) -> TokenLogprob | None:
    lp = _clip(_get(entry, "logprob"))
    if lp is None:
        return None
    top: list[tuple[str, float]] = []
    for alt in _get(entry, "top_logprobs", None) or ():
        alp = _clip(_get(alt, "logprob"))
        if alp is not None:
            top.append((str(_get(alt, "token", "")), alp))
    return TokenLogprob(str(_get(entry, "token", "") or ""), lp, tuple(top))


def _is_token_entry(x: Any) -> bool:
    if isinstance(x, Mapping):
        return "logprob" in x
    return hasattr(x, "logprob") and not isinstance(x, str | bytes)


def normalize_logprobs(raw: Any, provider: str = "openai") -> list[TokenLogprob]:
    """Turn a provider's logprobs into a list of ``TokenLogprob`` (empty when there are none).

    Accepted shapes:

    - OpenAI / OpenAI-compatible (llama-server): ``response_metadata["logprobs"]``, i.e.
      ``{"content": [{"token", "logprob", "top_logprobs": [...]}, ...]}``, or that list itself,
      or the SDK's ``ChatCompletionTokenLogprob`` objects.
    - Ollama (``langchain_ollama``): ``response_metadata["logprobs"]`` is a list of
      ``{"token", "logprob", "top_logprobs": [{"token", "logprob"}]}`` (dicts or ``ollama``
      ``Logprob`` models).
    - Legacy completions: ``{"tokens": [...], "token_logprobs": [...]}``.
    - A plain list of floats (token logprobs).
    - A message (``AIMessage``), ``response_metadata`` or ``generation_info`` dict holding any
      of the above under ``"logprobs"``.

    Raises ``ValueError`` for anything else. ``provider`` names the source in that error.

    Usage::

        tokens = normalize_logprobs(msg.response_metadata["logprobs"], "openai")
    """
    if raw is None:
        return []
    meta = getattr(raw, "response_metadata", None)
    if isinstance(meta, Mapping):  # a message
        return normalize_logprobs(meta.get("logprobs"), provider)
    if isinstance(raw, Mapping):
        if "content" in raw and (raw["content"] is None or isinstance(raw["content"], list)):
            return normalize_logprobs(raw["content"] or [], provider)
        if "token_logprobs" in raw:
            tokens = list(raw.get("tokens") or [])
            legacy: list[TokenLogprob] = []
            for i, lp in enumerate(raw["token_logprobs"] or []):
                v = _clip(lp)
                if v is not None:
                    legacy.append(TokenLogprob(str(tokens[i]) if i < len(tokens) else "", v))
            return legacy
        if "logprobs" in raw:
            return normalize_logprobs(raw["logprobs"], provider)
        if _is_token_entry(raw):
            tok = _token(raw)
            return [tok] if tok else []
        raise ValueError(
            f"unrecognised {provider} logprobs mapping with keys {sorted(raw)[:6]}: expected "
            "{'content': [...]} (OpenAI) or a list of {'token', 'logprob'} entries"
        )
    if isinstance(raw, str | bytes):
        raise ValueError(f"{provider} logprobs must be a list or mapping, not text")
    content = getattr(raw, "content", None)
    if isinstance(content, list) and not isinstance(raw, Sequence):  # SDK ChoiceLogprobs
        return normalize_logprobs(content, provider)
    if isinstance(raw, Iterable):
        out: list[TokenLogprob] = []
        for entry in raw:
            if isinstance(entry, bool):
                raise ValueError(f"{provider} logprobs: booleans are not logprobs")
            if isinstance(entry, int | float):
                v = _clip(entry)
                if v is not None:
                    out.append(TokenLogprob("", v))
            elif _is_token_entry(entry):
                tok = _token(entry)
                if tok is not None:
                    out.append(tok)
            else:
                raise ValueError(
                    f"unrecognised {provider} logprob entry {type(entry).__name__}: expected a "
                    "float or a {'token', 'logprob'} entry"
                )
        return out
    raise ValueError(f"unrecognised {provider} logprobs of type {type(raw).__name__}")


# --------------------------------------------------------------------------- confidence


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default method) of a sorted, non-empty list."""
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def confidence_from_logprobs(
    tokens: Sequence[TokenLogprob] | Sequence[float], *, alpha: float = ALPHA
) -> ConfidenceEstimate:
    """Confidence in [0, 1] from token logprobs: ``geo**(1-alpha) * p10**alpha`` (module doc).

    An empty list gives ``value=0.0`` with ``details["reason"]`` set: no evidence is not
    confidence (``cascade_step`` falls back to the format check instead).

    Usage::

        est = confidence_from_logprobs(normalize_logprobs(raw, "openai"))
        est.value, est.details["geo_mean_prob"], est.details["p10_prob"]
    """
    lps = [t.logprob if isinstance(t, TokenLogprob) else _clip(t) for t in tokens]
    values = [v for v in lps if v is not None]
    if not values:
        return ConfidenceEstimate(0.0, "logprobs", 0, {"reason": "no token logprobs"})
    mean_lp = sum(values) / len(values)
    geo = math.exp(mean_lp)
    probs = sorted(math.exp(v) for v in values)
    low = _quantile(probs, LOW_QUANTILE)
    value = (geo ** (1.0 - alpha)) * (low**alpha)
    return ConfidenceEstimate(
        value=min(1.0, max(0.0, value)),
        method="logprobs",
        n_tokens=len(values),
        details={
            "geo_mean_prob": geo,
            "p10_prob": low,
            "min_prob": probs[0],
            "mean_logprob": mean_lp,
            "alpha": alpha,
        },
    )


_REFUSAL = re.compile(
    r"\b(i\s*(?:am|'m)\s*(?:sorry|unable|not able)|i\s*(?:can\s*not|cannot|can't|won't)\s+"
    r"(?:help|answer|assist|provide|do)|as an ai\b|i do not have (?:access|the ability))",
    re.IGNORECASE,
)
_HEDGE = re.compile(
    r"\b(i'?m not (?:sure|certain)|i am not (?:sure|certain)|i don'?t know|i do not know|"
    r"not sure|it is unclear|it'?s unclear|i think|i believe|probably|possibly|perhaps|maybe)\b",
    re.IGNORECASE,
)
_NUMERIC_Q = re.compile(
    r"(\bhow (?:many|much)\b|\d+\s*[-+*/x×÷^]\s*\d+|\bsum of\b|\bproduct of\b|"
    r"\bwhat is \d|\bcalculate\b|\bcompute\b)",
    re.IGNORECASE,
)


def response_text(response: Any) -> str:
    """The text of a response: a str, a message's content (text blocks joined) or ``.text``.

    Usage::

        response_text(AIMessage(content="Paris"))  # 'Paris'
    """
    if response is None:
        return ""
    if isinstance(response, str):
        return response
    content = getattr(response, "content", None)
    if content is None and isinstance(response, Mapping):
        content = response.get("content", response.get("text"))
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, Mapping) and block.get("type", "text") == "text":
                parts.append(str(block.get("text", "")))
        return "".join(parts)
    text = getattr(response, "text", None)
    if isinstance(text, str):
        return text
    return str(response)


def _request_text(request: Any) -> str:
    if request is None:
        return ""
    if isinstance(request, str):
        return request
    if isinstance(request, Mapping):
        for key in ("prompt", "query", "input", "text", "content", "messages"):
            if key in request:
                return _request_text(request[key])
        return ""
    if isinstance(request, Sequence):
        return "\n".join(_request_text(m) for m in request)
    return response_text(request)


def answer_format_confidence(
    text: str, request: Any = None, *, finish_reason: str | None = None
) -> ConfidenceEstimate:
    """Confidence from the answer's form alone, for tiers without logprobs (``format_check``).

    Checks, each lowering the score (the lowest applicable wins): empty answer (0.0), refusal
    (0.1), truncated (``finish_reason == "length"`` or an unclosed code fence: 0.2),
    degenerate repetition (0.2), a numeric question answered without any digit (0.3), hedging
    (0.4). An answer passing every check gets ``FORMAT_CHECK_MAX`` (0.75), never 1.0: form
    says nothing about correctness. ``details["checks"]`` lists the failed checks.

    Usage::

        answer_format_confidence("I'm not sure, maybe 12?", "What is 7+5?").value  # 0.4
    """
    failed: list[str] = []
    score = FORMAT_CHECK_MAX
    stripped = (text or "").strip()
    n_words = len(stripped.split())

    def fail(name: str, value: float) -> None:
        nonlocal score
        failed.append(name)
        score = min(score, value)

    if not stripped:
        fail("empty", 0.0)
    else:
        if _REFUSAL.search(stripped):
            fail("refusal", 0.1)
        if finish_reason == "length" or stripped.count("```") % 2 == 1:
            fail("truncated", 0.2)
        lines = [ln.strip() for ln in stripped.splitlines() if ln.strip()]
        if len(lines) >= 4 and len(set(lines)) <= len(lines) / 3:
            fail("repetition", 0.2)
        else:
            words = stripped.lower().split()
            if len(words) >= 20 and len(set(words)) < len(words) / 5:
                fail("repetition", 0.2)
        if _NUMERIC_Q.search(_request_text(request)) and not re.search(r"\d", stripped):
            spelled = r"\b(zero|one|two|three|four|five|six|seven|eight|nine|ten|hundred)\b"
            if not re.search(spelled, stripped, re.IGNORECASE):
                fail("no_number", 0.3)
        if _HEDGE.search(stripped):
            fail("hedging", 0.4)
    return ConfidenceEstimate(
        value=score,
        method="format_check",
        n_tokens=n_words,
        details={"checks": failed or ["passed"], "max": FORMAT_CHECK_MAX},
    )


# --------------------------------------------------------------------------- threshold


@functools.cache
def _load_calibration() -> dict[str, Any] | None:
    from importlib import resources

    try:
        path = resources.files("aco_langchain").joinpath("data", _CALIBRATION_FILE)
        raw = path.read_text("utf-8")
        data = json.loads(raw)
        float(data["threshold"])
        return dict(data)
    except (OSError, ValueError, KeyError, TypeError, ModuleNotFoundError):
        return None


def calibrated_threshold() -> float:
    """The shipped, calibrated escalation threshold (``aco_langchain/data/...json``).

    Falls back to ``FALLBACK_THRESHOLD`` with a ``RuntimeWarning`` if the file is unreadable.

    Usage::

        calibrated_threshold()  # e.g. 0.42
    """
    data = _load_calibration()
    if data is None:
        warnings.warn(
            f"aco_langchain/data/{_CALIBRATION_FILE} missing or unreadable: using the "
            f"uncalibrated cascade threshold {FALLBACK_THRESHOLD}",
            RuntimeWarning,
            stacklevel=2,
        )
        return FALLBACK_THRESHOLD
    return float(data["threshold"])


def _resolve_threshold(threshold: float | None, config: ACOConfig | None) -> float:
    if threshold is None and config is not None:
        threshold = config.cascade.confidence_threshold
    if threshold is None:
        threshold = calibrated_threshold()
    if not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(f"cascade threshold {threshold} is outside [0, 1]")
    return float(threshold)


# --------------------------------------------------------------------------- decision


def cascade_step(
    request: Any,
    initial_tier: int,
    cheap_logprobs: Any,
    cheap_response: Any,
    *,
    config: ACOConfig | None = None,
    threshold: float | None = None,
    provider: str = "openai",
    available_tiers: Iterable[int] | None = None,
    finish_reason: str | None = None,
) -> CascadeResult:
    """Decide whether the cheap tier's answer stands or the next higher tier should redo it.

    Confidence comes from ``cheap_logprobs`` (any shape ``normalize_logprobs`` accepts; when
    None, the logprobs in ``cheap_response.response_metadata`` are used). Without usable
    logprobs the format check is used and the reason says so. Hard form failures (empty,
    refusal, truncated) cap the logprob confidence too. Below the threshold the request goes
    to the smallest tier above ``initial_tier`` in ``available_tiers`` (default 1-5); at tier 5
    or with no higher tier it stays, with the reason saying so.

    Usage::

        res = cascade_step(request="Capital of Peru?", initial_tier=1,
                           cheap_logprobs=msg.response_metadata.get("logprobs"),
                           cheap_response=msg)
        res.escalated, res.final_tier, res.model_id, res.confidence, res.reason
    """
    from aco_langchain.config import TIER_NUMBERS, ACOConfig

    cfg = config if config is not None else ACOConfig()
    if initial_tier not in TIER_NUMBERS:
        raise ValueError(f"initial_tier {initial_tier} does not exist: tiers are 1 to 5")
    limit = _resolve_threshold(threshold, cfg)
    text = response_text(cheap_response)
    meta = getattr(cheap_response, "response_metadata", None)
    if finish_reason is None and isinstance(meta, Mapping):
        finish_reason = meta.get("finish_reason") or meta.get("done_reason")
    if cheap_logprobs is None and isinstance(meta, Mapping):
        cheap_logprobs = meta.get("logprobs")
        provider = str(meta.get("model_provider") or provider)

    note = ""
    try:
        tokens = normalize_logprobs(cheap_logprobs, provider)
    except ValueError as err:
        tokens, note = [], f"logprobs unreadable ({err}); "
    form = answer_format_confidence(text, request, finish_reason=finish_reason)
    if tokens:
        est = confidence_from_logprobs(tokens)
        conf, method = est.value, "logprobs"
        hard = [c for c in form.details["checks"] if c in ("empty", "refusal", "truncated")]
        if hard:
            conf = min(conf, form.value)
            how = f"logprob confidence {est.value:.3f} capped by format check ({', '.join(hard)})"
        else:
            how = f"logprob confidence {conf:.3f} over {est.n_tokens} tokens"
    else:
        conf, method = form.value, "format_check"
        how = (
            f"{note or 'no logprobs; '}format check only "
            f"({', '.join(form.details['checks'])}) gives {conf:.2f}"
        )

    tier_id = cfg.tier(initial_tier).model_id
    if conf >= limit:
        return CascadeResult(
            False,
            initial_tier,
            tier_id,
            conf,
            f"{how} >= threshold {limit:.3f}: keep",
            method,
            limit,
        )
    allowed = sorted(set(available_tiers if available_tiers is not None else TIER_NUMBERS))
    higher = [t for t in allowed if t > initial_tier and t in TIER_NUMBERS]
    if not higher:
        why = "tier 5 is the top" if initial_tier == 5 else "no higher tier is available"
        return CascadeResult(
            False,
            initial_tier,
            tier_id,
            conf,
            f"{how} < threshold {limit:.3f} but {why}: keep",
            method,
            limit,
        )
    nxt = higher[0]
    return CascadeResult(
        True,
        nxt,
        cfg.tier(nxt).model_id,
        conf,
        f"{how} < threshold {limit:.3f}: escalate tier {initial_tier} -> {nxt}",
        method,
        limit,
    )
