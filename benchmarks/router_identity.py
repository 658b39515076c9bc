"""Bit-for-bit identity of the routers' outputs between two checkouts (for speed-ups).

Builds the golden prompts (``tests/data/router_golden.jsonl``) plus ``--synthetic``
generated prompts (fixed seed: case, tabs, runs of spaces and blank lines, ``\\r``, form
feeds, non-ASCII text, code, math, choices, few-shot answers, critical and task words,
words led by ``-`` or ``'``, prompts under 4 bytes and over the 4,096-byte hash window,
multi-turn requests with a system turn and tools) and records, for each prompt and each of
three configs (the seed's prices, genai-prices' defaults, a calibrated mixed knob): the
learned router's ``assess`` (every field, floats by ``repr``), ``predict``, its features
(dense list, hashed indices/weights digest) and the rule router's ``assess``. Every 4th
request also goes through the shipped weights read with a not-normalised and a
rolling-hash feature spec (the code paths of other bundles).

``--against DIR`` runs the same recording with ``PYTHONPATH=DIR`` in a subprocess (another
checkout, e.g. ``git worktree add ../base main``) and with this checkout, and compares
every record; exit status 1 on any difference. Writes
``benchmarks/results/router_identity.json``.

Usage::

    PYTHONPATH=$PWD python benchmarks/router_identity.py --against ../base
    PYTHONPATH=$PWD python benchmarks/router_identity.py --dump /tmp/now.jsonl
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data" / "router_golden.jsonl"
OUT = Path(__file__).parent / "results" / "router_identity.json"

_PLAIN_TEXT = (
    "the a of to and in is it that for on with as be at this by from or an are was "
    "which one two three many each other number people time year way day thing man world "
    "life hand part child eye woman place work week case point group make know take see "
    "come think look want give use find tell ask seem feel try leave call good new first "
    "last long great little own old right big high different small large next early young "
    "important few public bad same able river mountain city history music color water "
    "following best given statement true false correct choose sentence passage author "
    "does did has have had will would could should may might must can not no yes"
)
_PLAIN = _PLAIN_TEXT.split()
_WORDS_TEXT = (
    "write draft essay email story poem blog explain why reason deduce logic summarize "
    "summarise tldr recap solve equation integral calculate research survey literature "
    "compare investigate advances legal contract gdpr hipaa compliance lawsuit regulation "
    "liability bug code function exception python javascript sql api typo auth refactor "
    "implementing compiler debugging rollout multi-step end-to-end orchestrate migration "
    "deploy delete truncate wipe rm rollback revoke migrate production prod admin payment "
    "credentials secret outage incident critical analyze design architecture security "
    "audit optimize prove trade-offs strategy hello hi define list what who return import "
    "answer question option customer invoice total parse csv file test value x y n 42 3.14 "
    "2x 10k v2 don't it's -flag --verbose 'quoted' o'neil state-of-the-art e-mail"
)
_WORDS = _WORDS_TEXT.split()
_FRAGMENTS = (
    "```python\ndef f(x):\n    return x + 1\n```",
    "```js\nfunction g() {\n  return 2;\n}\n```",
    "import numpy as np\n",
    "class Foo:\n    pass\n",
    '{\n  "a": 1\n}',
    "3 + 4 = ?",
    "2*3 - 1",
    "5 ^ 2",
    "\\frac{1}{2}",
    "solve for x: 2x + 3 = 7",
    "\nA) one\nB) two\nC) three\nD) four",
    "\na) yes\nb) no",
    "Answer: B",
    "answer: 42",
    "stack trace",
    "unit test",
    "step by step plan",
    "roll out",
    "tl;dr",
    "bullet points",
    "Café naïve résumé",
    "数据 分析 报告",
    "Привет мир",
    "emoji 🚀🔥 here",
    "TL;DR: SHOUTING WORDS",
    "line one\r\nline two\r\n",
    "tabs\tand\t\ttabs",
    "form\x0cfeed and vertical\x0btab",
    "sep\x1cchars\x1dhere",
    "many     spaces   here",
    "\n\n\n\nblank runs\n\n\n",
    "   leading and trailing   ",
    "What is 2+2?",
    "Q: why? A: because.",
    "(parenthesised) [bracketed] {braced}; punct: !,.",
    "-dash-led 'quote-led --double -- lone - ' ''",
    "snake_case_name and CamelCase and UPPER_CASE",
    "\u00a0non-breaking\u2003em space\u2028line sep",
)
_ROLE_SETS = (
    ["human"],
    ["system", "human"],
    ["human", "ai", "human"],
    ["system", "human", "ai", "tool", "human"],
    ["user", "assistant", "user"],
    [],
)


def synthetic_prompts(n: int, seed: int = 18) -> list[str]:
    """``n`` prompts from a fixed seed (the same list in every checkout)."""
    rng = random.Random(seed)
    out: list[str] = []
    for i in range(n):
        kind = i % 10
        if kind == 0:  # tiny, including fewer than 4 bytes
            out.append(rng.choice(["", "a", "hi", "2+2", "ok?", "é", "  ", "\n", "abcd"]))
            continue
        target = rng.choice([40, 120, 400, 1500, 1500, 3000]) if kind != 9 else 6000
        parts: list[str] = []
        size = 0
        while size < target:
            if kind >= 5 and rng.random() < 0.25:
                piece = rng.choice(_FRAGMENTS)
            else:
                vocab = _WORDS if kind >= 3 and rng.random() < 0.4 else _PLAIN
                piece = " ".join(rng.choice(vocab) for _ in range(rng.randint(3, 14)))
                if rng.random() < 0.3:
                    piece = piece.capitalize() + rng.choice([".", "?", "!", ":", ""])
                if rng.random() < 0.1:
                    piece = piece.upper()
            parts.append(piece)
            parts.append(rng.choice([" ", " ", "\n", "\n\n", "  ", "\t", "\n\n\n"]))
            size += len(piece) + 1
        out.append("".join(parts)[: target + rng.randint(0, 50)])
    return out


def _requests(prompts: list[str], seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    reqs: list[dict] = []
    for i, text in enumerate(prompts):
        if i % 5 != 4:
            reqs.append({"from_text": text})
            continue
        roles = rng.choice(_ROLE_SETS)
        last = rng.choice([text, text[: len(text) // 2], None, ""])
        ctx = rng.choice(["You are terse.\n", "System: be careful.\n\n", ""])
        reqs.append({"text": ctx + text, "last_user_text": last, "roles": roles, "n_tools": i % 4})
    return reqs


def record(n_synthetic: int, dump: Path) -> int:
    """Write one JSON line per (request, router variant, config); returns how many."""
    from aco_langchain.config import ACOConfig, seed_priced_models
    from aco_langchain.config_learning import CalibratedKnob
    from aco_langchain.routing.base import RouteRequest

    golden = [json.loads(line)["prompt"] for line in GOLDEN.read_text().splitlines()]
    reqs = [{"from_text": p} for p in golden] + _requests(synthetic_prompts(n_synthetic))
    mixed = ACOConfig()
    mixed.learning.calibration = CalibratedKnob(lam=0.4, lam_next=0.05, mix=0.5, target=0.9)
    configs = {"seed_prices": ACOConfig(models=seed_priced_models()), "default": ACOConfig()}
    configs["calibrated_mix"] = mixed
    routers = {v: _router(v) for v in VARIANTS}
    n = 0
    with dump.open("w") as fh:
        for i, r in enumerate(reqs):
            text = r.get("from_text")
            req = RouteRequest(**r) if text is None else RouteRequest.from_text(text)
            # the shipped bundle; every 4th request also through the other feature paths
            for variant in VARIANTS if i % 4 == 0 else VARIANTS[:1]:
                for row in _rows(routers[variant], req, configs):
                    fh.write(json.dumps({"i": i, "v": variant, **row}, sort_keys=True) + "\n")
                    n += 1
    return n


#: The shipped router, and the shipped weights read with other feature specs (not useful
#: routers: the other code paths, for bundles trained without normalising or with rolling
#: hashes).
VARIANTS = ("shipped", "not_normalized", "rolling")


def _router(variant: str) -> Any:
    from aco_langchain.routing.bundle import Bundle, load_bundle
    from aco_langchain.routing.learned import LearnedRouter, load_router

    if variant == "shipped":
        return load_router()
    base = load_bundle()
    spec = base.manifest.feature_spec
    if variant == "not_normalized":
        spec = spec.model_copy(update={"normalize": False})
    else:  # rolling hashes of char 3- and 4-grams and word uni/bigrams
        spec = spec.model_copy(
            update={"ngram_hash": "rolling", "char_ngrams": (3, 4), "word_ngrams": (1, 2)}
        )
    man = base.manifest.model_copy(update={"feature_spec": spec})
    return LearnedRouter(Bundle(manifest=man, arrays=base.arrays))


def _rows(router: Any, req: Any, configs: dict[str, Any]) -> list[dict[str, Any]]:
    """One request's records: features and predictions once, assessments per config."""
    import numpy as np

    from aco_langchain.routing.rules import RuleRouter

    fz = router.featurizer
    ask = router.ask_text(req)
    idx, w = fz.hashed(ask, ask if fz.spec.normalize else None)
    dense = fz.dense(ask, req.roles, req.n_tools, ask)
    p, tin, tout = router.predict(req)
    feats = {
        "ask_sha": hashlib.sha256(ask.encode("utf-8", "surrogatepass")).hexdigest(),
        "dense": [repr(x) for x in dense.tolist()],
        "hashed": hashlib.sha256(idx.tobytes() + w.tobytes()).hexdigest(),
        "predict": [repr(x) for x in np.asarray(p).tolist()] + [repr(tin), repr(tout)],
    }
    rows = []
    for name, cfg in configs.items():
        a = router.assess(req, cfg).model_dump()
        a["confidence"] = repr(a["confidence"])
        a["p_success"] = {k: repr(v) for k, v in a["p_success"].items()}
        b = RuleRouter().assess(req, cfg).model_dump()
        rows.append({"config": name, "learned": a, "rules": b, **feats})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--synthetic", type=int, default=3000)
    ap.add_argument("--dump", type=Path, help="only record this checkout to this file")
    ap.add_argument("--against", type=Path, help="the other checkout's root directory")
    args = ap.parse_args()
    if args.dump is not None:
        print(f"recorded {record(args.synthetic, args.dump)} assessments to {args.dump}")
        return
    if args.against is None:
        ap.error("give --against DIR or --dump FILE")
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for label, root in (("base", args.against.resolve()), ("now", ROOT)):
            files[label] = Path(tmp) / f"{label}.jsonl"
            env = {**os.environ, "PYTHONPATH": str(root)}
            cmd = [sys.executable, __file__, "--synthetic", str(args.synthetic)]
            subprocess.run([*cmd, "--dump", str(files[label])], env=env, check=True)
        base = files["base"].read_text().splitlines()
        now = files["now"].read_text().splitlines()
    diff = [i for i, (a, b) in enumerate(zip(base, now, strict=False)) if a != b]
    same = len(base) == len(now) and not diff
    for i in diff[:5]:
        print("DIFFERENT:\n  base", base[i][:600], "\n  now ", now[i][:600])
    print(
        f"{len(now)} records (requests x router variants x 3 configs): "
        f"{'all identical' if same else f'{len(diff)} differ'} to {args.against}"
    )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    result = {"records": len(now), "identical": same, "n_different": len(diff)}
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
