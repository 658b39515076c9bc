"""Write an example spend ledger (a week of calls) for the README's dashboard screenshot.

The rows are *example data*, generated here with a fixed seed: 7 days of calls over the five
seed tiers, priced by the default config's tier prices (`providers.tiers.cost_usd`) with the
baseline tier's cost beside each, two API keys, a few runs over budget, some escalations and
cache hits. They go through the real ledger API (`hold` + `settle`) into a SQLite file.

Usage::

    python docs/example_ledger.py /tmp/aco-example/ledger.db     # prints the config it wrote
    aco dashboard --config /tmp/aco-example/config.yaml --screenshot docs/img/dashboard.png
"""

from __future__ import annotations

import calendar
import random
import sys
from pathlib import Path

from aco_langchain.config import ACOConfig
from aco_langchain.providers.tiers import cost_usd
from aco_langchain.spend.ledger import Limit, SpendRecord, open_ledger

START = calendar.timegm((2026, 11, 24, 8, 0, 0))
TIER_WEIGHTS = {1: 0.50, 2: 0.28, 3: 0.17, 4: 0.04, 5: 0.01}


def main(db: Path) -> Path:
    db.parent.mkdir(parents=True, exist_ok=True)
    if db.exists():
        db.unlink()
    url = f"sqlite:///{db}"
    cfg = ACOConfig()
    ledger = open_ledger(url)
    rng = random.Random(15)
    base_spec = cfg.tier(cfg.ledger.baseline_tier)
    n_run = 0
    for day in range(7):
        for _ in range(rng.randint(6, 10)):  # runs (tasks) per day
            n_run += 1
            run = f"task-{n_run:03d}"
            key = rng.choice(["team-search", "team-search", "team-support"])
            t = START + day * 86400 + rng.randint(0, 10 * 3600)
            for _ in range(rng.randint(2, 7)):  # calls per task
                tier = rng.choices(list(TIER_WEIGHTS), weights=list(TIER_WEIGHTS.values()))[0]
                tin, tout = rng.randint(200, 2400), rng.randint(40, 500)
                cached = tier <= 3 and rng.random() < 0.12
                escalated = not cached and tier >= 3 and rng.random() < 0.35
                cost = 0.0 if cached else cost_usd(cfg.tier(tier), tin, tout)
                t += rng.randint(5, 120)
                hold = ledger.hold([Limit(f"run:{run}")], usd=cost)
                assert not hasattr(hold, "reason"), hold
                ledger.settle(
                    hold,
                    SpendRecord(
                        run_key=run,
                        cost_usd=cost,
                        input_tokens=tin,
                        output_tokens=tout,
                        tier=tier,
                        model=cfg.tier(tier).model_id,
                        outcome="escalated" if escalated else "ok",
                        baseline_usd=cost_usd(base_spec, tin, tout),
                        api_key=key,
                        tags=("cache_hit",) if cached else (),
                        ts=float(t),
                    ),
                )
    config = db.parent / "config.yaml"
    config.write_text(
        f"ledger: {{url: 'sqlite:///{db}'}}\n"
        "routing: {max_cost_per_task: 5.0}\n"
        "budgets: {keys: {team-search: 80.0, team-support: 40.0}, budget_duration: forever}\n"
    )
    return config


if __name__ == "__main__":
    print(main(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/aco-example/ledger.db")))
