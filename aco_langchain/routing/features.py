"""Prompt features for the learned router, vectorised with numpy (no Python n-gram loops).

Two groups, both computed from what is known before the call:

* hashed n-grams: character n-grams and word uni/bi-grams of the lower-cased prompt,
  hashed with a polynomial rolling hash (mod 2**64, so every n-gram hash of the whole
  prompt is a couple of vector operations) into ``2**bits`` buckets. Each family is
  weighted ``1/sqrt(count)`` so a linear model's score is ``weights @ W[indices]``;
* dense structure: lengths, line/question/digit shares, multiple-choice, code and math
  markers, few-shot answer count, message roles and tools bound.

Usage::

    from aco_langchain.routing.features import FeatureSpec, Featurizer
    fz = Featurizer(FeatureSpec())
    idx, w = fz.hashed("What is 2+2?")
    dense = fz.dense("What is 2+2?", roles=["human"], n_tools=0)
"""

from __future__ import annotations

import math
import re
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

_P = np.uint64(0x100000001B3)  # odd, so invertible mod 2**64
_MIX = np.uint64(0x9E3779B97F4A7C15)
_U64 = 1 << 64
_BLANK_RUNS = re.compile("\n{3,}")
_SPACE_RUNS = re.compile("  +")
#: ASCII whitespace besides space, tab and "\n" (line breaks for ``splitlines``, or a
#: separator for ``split``): text holding any is normalised the general way.
_RARE_SPACES = ("\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f")

#: Standardised dense features are clipped to +-this (training and inference alike).
DENSE_CLIP = 4.0

DENSE_NAMES = (
    "log_chars",
    "log_words",
    "log_lines",
    "frac_digit",
    "frac_upper",
    "frac_punct",
    "n_question",
    "n_answer_markers",
    "n_choice_markers",
    "code_markers",
    "math_markers",
    "log_last_user_chars",
    "n_turns",
    "has_system",
    "n_tools",
    "frac_nonascii",
)


class FeatureSpec(BaseModel):
    """How prompts become features (stored in the bundle manifest)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bits: int = Field(14, ge=8, le=22, description="Hash buckets = 2**bits.")
    char_ngrams: tuple[int, ...] = (4,)
    word_ngrams: tuple[int, ...] = ()
    ngram_hash: Literal["rolling", "packed"] = Field(
        "packed",
        description="'packed': a char n-gram of <= 4 bytes is read as one little-endian "
        "uint32 and bucketed by a multiplicative hash (no prefix sums: a few microseconds "
        "for 1,500 characters); 'rolling': polynomial rolling hash mod 2**64 (any n).",
    )
    head_chars: int = Field(1024, ge=0, description="Keep this many leading bytes ...")
    tail_chars: int = Field(3072, ge=64, description="... and this many trailing bytes.")
    normalize: bool = Field(
        False,
        description="Features of ``normalize_prompt(text)``: case folded, runs of spaces "
        "and blank lines collapsed, ends stripped, so neither case nor whitespace can move "
        "a prompt's tier. False only for bundles trained before it existed.",
    )

    @property
    def n_buckets(self) -> int:
        return 1 << self.bits

    @property
    def n_dense(self) -> int:
        return len(DENSE_NAMES)


def _pow_table(base: int, n: int) -> np.ndarray:
    out = np.empty(n, dtype=np.uint64)
    acc = 1
    for i in range(n):
        out[i] = acc
        acc = (acc * base) % _U64
    return out


def normalize_prompt(text: str) -> str:
    """The prompt as the router judges it: lower-cased, each line's runs of spaces and tabs
    collapsed to one space, blank-line runs collapsed to one, ends stripped.

    Example:
        ```python
        normalize_prompt("  What IS  2+2? \n")   # 'what is 2+2?'
        ```
    """
    # Exactly the per-line loop (tests/unit_tests/test_rule_words.py checks it against it),
    # without a Python step per line: a collapsed line holds no line break, so blank-line
    # runs are runs of 3+ "\n" here, and the final strip drops leading and trailing ones.
    low = text.lower()
    if low.isascii() and not any(c in low for c in _RARE_SPACES):
        # Only spaces, tabs and "\n": a tab is a space, each line's ends are stripped, then
        # runs of spaces collapse (one C pass over the runs only); no word split. Stripping
        # first gives the same text as collapsing first (a run at a line's end goes either
        # way) and skips the regex pass when the only runs were indentation, as in code.
        if "\t" in low:
            low = low.replace("\t", " ")
        out = "\n".join(map(str.strip, low.split("\n")))
        if "  " in out:
            out = _SPACE_RUNS.sub(" ", out)
    else:
        out = "\n".join(map(" ".join, map(str.split, low.splitlines())))
    if "\n\n\n" in out:
        out = _BLANK_RUNS.sub("\n\n", out)
    return out.strip()


class Featurizer:
    """Turns prompt text into hashed n-gram indices/weights and dense structure features.

    With ``spec.normalize`` the caller passes ``normalize_prompt(text)`` (training and
    ``LearnedRouter`` both do): the features then cannot see case or spacing.
    """

    def __init__(self, spec: FeatureSpec) -> None:
        self.spec = spec
        n = spec.head_chars + spec.tail_chars + 2
        p = int(_P)
        self._pow = _pow_table(p, n)
        self._ipow = _pow_table(pow(p, -1, _U64), n)
        self._shift = np.uint64(64 - spec.bits)
        self._salts = {
            ("c", k): np.uint64((0x51ED27 * (k + 1) * 2654435761) % _U64) for k in spec.char_ngrams
        }
        self._salts.update(
            {("w", k): np.uint64((0xA5A5F * (k + 7) * 40503) % _U64) for k in spec.word_ngrams}
        )
        alnum = np.zeros(256, dtype=bool)
        for ch in b"abcdefghijklmnopqrstuvwxyz0123456789_":
            alnum[ch] = True
        alnum[128:] = True  # UTF-8 bytes of non-ASCII letters stay inside words
        self._alnum = alnum
        self._packed = spec.ngram_hash == "packed"
        if self._packed and (spec.word_ngrams or any(k > 4 for k in spec.char_ngrams)):
            raise ValueError("ngram_hash='packed' supports char n-grams of 1..4 bytes only")
        self._shift32 = np.uint32(32 - spec.bits)
        self._masks = {k: np.uint32((1 << (8 * k)) - 1) for k in spec.char_ngrams}
        self._mults = {
            k: np.uint32((0x9E3779B1 + 0x7F4A7C16 * i) % (1 << 32) | 1)
            for i, k in enumerate(spec.char_ngrams)
        }

    def _hashed_packed(self, raw: bytes) -> tuple[np.ndarray, np.ndarray]:
        head, tail = self.spec.head_chars, self.spec.tail_chars
        if len(raw) > head + tail:
            raw = raw[:head] + raw[-tail:]
        n = len(raw)
        if n < 4:
            return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.float32)
        # every 4-byte window: four uint32 views at offsets 0..3 (order is irrelevant to a
        # bag of n-grams); shorter n-grams are masks of the same windows (so the last
        # 4 - k positions of a k-gram family are skipped)
        # (the four runs of whole windows joined as bytes: one frombuffer, no concatenate)
        grams = np.frombuffer(
            b"".join([raw[j : j + (n - j) // 4 * 4] for j in range(4)]), dtype="<u4"
        )
        w = np.float32(1.0 / math.sqrt(grams.shape[0]))
        hashes = []
        for k in self.spec.char_ngrams:
            h = (grams if k == 4 else grams & self._masks[k]) * self._mults[k]
            h >>= self._shift32
            hashes.append(h)
        allh = hashes[0] if len(hashes) == 1 else np.concatenate(hashes)
        weights = np.empty(allh.shape[0], dtype=np.float32)
        weights.fill(w)  # np.full's wrapper costs twice this
        return allh.astype(np.intp), weights

    def _bytes(self, low: str) -> np.ndarray:
        raw = low.encode("utf-8", "replace")
        head, tail = self.spec.head_chars, self.spec.tail_chars
        if len(raw) > head + tail:
            raw = raw[:head] + raw[-tail:]
        return np.frombuffer(raw, dtype=np.uint8)

    def hashed(self, text: str, low: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Bucket indices and weights of ``text``'s n-grams (repeats stay repeated).

        A linear model scores ``weights @ W[indices]``. ``low`` is ``text.lower()`` when
        the caller already has it.
        """
        low = text.lower() if low is None else low
        if self._packed:
            return self._hashed_packed(low.encode("utf-8", "replace"))
        b = self._bytes(low)
        n = b.shape[0]
        if n == 0:
            return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.float32)
        # prefix[i] = sum_{j<i} b[j] * P**j  (mod 2**64); span hash = (pre[e]-pre[s]) * P**-s
        prefix = np.empty(n + 1, dtype=np.uint64)
        prefix[0] = 0
        np.cumsum(b * self._pow[:n], out=prefix[1:])
        ipow = self._ipow
        hashes: list[np.ndarray] = []
        weights: list[np.ndarray] = []
        for k in self.spec.char_ngrams:
            if n < k:
                continue
            h = (prefix[k:] - prefix[:-k]) * ipow[: n - k + 1]
            h += self._salts[("c", k)]
            hashes.append(h)
            weights.append(np.full(h.shape[0], 1.0 / math.sqrt(h.shape[0]), dtype=np.float32))
        if self.spec.word_ngrams:
            isw = self._alnum[b].view(np.int8)
            edges = np.diff(isw, prepend=np.int8(0), append=np.int8(0))
            starts = np.flatnonzero(edges == 1)
            ends = np.flatnonzero(edges == -1)
            nw = starts.shape[0]
            for k in self.spec.word_ngrams:
                if nw < k:
                    continue
                s = starts[: nw - k + 1]
                h = (prefix[ends[k - 1 :]] - prefix[s]) * ipow[s]
                h += self._salts[("w", k)]
                hashes.append(h)
                weights.append(np.full(h.shape[0], 1.0 / math.sqrt(h.shape[0]), dtype=np.float32))
        if not hashes:
            return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.float32)
        allh = np.concatenate(hashes)
        allh *= _MIX
        allh >>= self._shift
        return allh.astype(np.intp), np.concatenate(weights)

    def dense(
        self,
        text: str,
        roles: list[str] | None = None,
        n_tools: int = 0,
        last_user_text: str | None = None,
        low: str | None = None,
    ) -> np.ndarray:
        """The structure features, in the order of ``DENSE_NAMES`` (raw, not standardised)."""
        return self._dense(
            text, text.encode("utf-8", "replace"), roles, n_tools, last_user_text, low
        )

    def lowered_features(
        self, low: str, roles: list[str], n_tools: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, bytes]:
        """``hashed(low, low)``, ``dense(low, roles, n_tools, low, low)`` and the UTF-8 bytes
        of ``low`` they read, from one encoding: the features of a lower-cased text (a
        normalised ask) that is also its own last user turn.

        Example:
            ```python
            idx, w, dense, raw = fz.lowered_features("what is 2+2?", ["human"], 0)
            ```
        """
        raw = low.encode("utf-8", "replace")
        idx, w = self._hashed_packed(raw) if self._packed else self.hashed(low, low)
        return idx, w, self._dense(low, raw, roles, n_tools, low, low), raw

    def _dense(
        self,
        text: str,
        raw: bytes,
        roles: list[str] | None,
        n_tools: int,
        last_user_text: str | None,
        low: str | None,
    ) -> np.ndarray:
        # byte classes (space, newline, '?', digit, upper, punct, non-ASCII, '=+'): one matvec;
        # Python floats from here (numpy scalars divide, add and convert slowly)
        counts = np.bincount(np.frombuffer(raw, dtype=np.uint8), minlength=256)
        cls: list[float] = (_BYTE_CLASSES @ counts).tolist()
        low = text.lower() if low is None else low
        nf = float(max(len(text), 1))
        roles = roles or []
        last = last_user_text if last_user_text is not None else text
        # code and math markers, each counted as str.count does; a marker whose rarest
        # character is absent counts 0 without a scan for the whole marker
        code = (
            (low.count("```") if "`" in low else 0)
            + low.count("def ")
            + low.count("return")
            + (low.count("{\n") if "{" in low else 0)
            + low.count("import ")
        )
        maths = cls[7] + (low.count("\\frac") if "\\" in low else 0) + low.count("solve")
        # the four "\nX)" markers never overlap: one regex pass counts them all
        choices = len(_CHOICES.findall(low)) if ")" in low else 0
        n_user = roles.count("human") + roles.count("user")
        out = np.array(
            [
                len(text),
                cls[0] + 1.0,
                cls[1],
                cls[3] / nf,
                cls[4] / nf,
                cls[5] / nf,
                cls[2],
                low.count("answer:"),
                choices,
                code,
                maths,
                len(last),
                n_user,
                0.0,
                n_tools,
                cls[6] / nf,
            ],
            dtype=np.float64,
        )
        np.log1p(out, out=out, where=_LOG_COLS)
        if "system" in roles:
            out[13] = 1.0
        return out


def _byte_classes() -> np.ndarray:
    m = np.zeros((8, 256))
    m[0, 32] = m[1, 10] = m[2, 63] = 1.0
    m[3, 48:58] = 1.0
    m[4, 65:91] = 1.0
    m[5, list(b".,;:!()[]{}\"'")] = 1.0
    m[6, 128:] = 1.0
    m[7, [61, 43]] = 1.0  # '=' and '+' (math markers that are single bytes)
    return m


_BYTE_CLASSES = _byte_classes()
#: Dense columns that are log1p(count); the others are shares or flags.
_LOG_COLS = np.array(
    [
        n not in ("frac_digit", "frac_upper", "frac_punct", "has_system", "frac_nonascii")
        for n in DENSE_NAMES
    ]
)
#: "\na)", "\nb)", "\nc)", "\nd)"
_CHOICES = re.compile("\n[a-d]\\)")
