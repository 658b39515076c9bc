"""One worker process of the shared-budget tests: N calls on one run key, then a JSON line.

Run as ``python -m tests.ledger_worker LEDGER_URL BASE_URL CALLS RUN_KEY [hang]``. Tiers 2-5
are ChatOpenAI models built from config against the loopback billing server; tier 1 (the
local model) is not running, so when nothing else fits the call is refused
(``BudgetExceededError``). Every 4th call streams. With ``hang`` the worker makes two normal
calls, prints ``ready``, then one call that the server never answers (to be killed -9).
"""

from __future__ import annotations

import json
import sys

from aco_langchain import ACORouterChatModel
from aco_langchain.config import config_from_dict
from aco_langchain.errors import AllTiersFailedError, BudgetExceededError
from aco_langchain.routing import RuleRouter
from aco_langchain.spend.ledger import open_ledger

#: Made-up prices ($/1K tokens) for the loopback tiers; the test bills with the same.
PRICES = {2: (0.001, 0.002), 3: (0.003, 0.006), 4: (0.01, 0.03), 5: (0.02, 0.04)}
BUDGET = 3.0
CAP = 200


def config(base_url: str, hold_ttl_s: float = 60.0, deadline_s: float = 20.0) -> dict:
    models = {
        f"tier{n}": {
            "model_id": f"loop-t{n}",
            "provider": "openai-compatible",
            "base_url": base_url,
            "cost_per_1k_input": p_in,
            "cost_per_1k_output": p_out,
            "capabilities": ["chat"],
        }
        for n, (p_in, p_out) in PRICES.items()
    }
    return {
        "routing": {
            "max_cost_per_task": BUDGET,
            "max_output_tokens": CAP,
            "max_retries": 1,
            "retry_base_delay_s": 0.0,
            "max_tokens_per_task": 10**9,
            "max_latency_per_call_s": deadline_s,
        },
        "models": models,
        "ledger": {"hold_ttl_s": hold_ttl_s},
    }


def main(argv: list[str]) -> None:
    url, base_url, calls, run_key = argv[0], argv[1], int(argv[2]), argv[3]
    hang = len(argv) > 4 and argv[4] == "hang"
    # A hold's TTL covers the call's deadline (validated): the hanging worker gets 2 s of both.
    ttl = 2.0 if hang else 60.0
    cfg = config_from_dict(config(base_url, hold_ttl_s=ttl, deadline_s=min(ttl, 20.0)))
    llm = ACORouterChatModel(config=cfg, router=RuleRouter(), ledger=open_ledger(url))
    out = {"answered": 0, "refused": 0, "failed": 0, "streams": 0}
    for i in range(2 if hang else calls):
        prompt = f"Write a long essay number {i} about ledgers"
        try:
            if i % 4 == 3:
                text = "".join(
                    str(c.content) for c in llm.stream(prompt, force_tier=4, aco_run_id=run_key)
                )
                out["streams"] += 1 if text else 0
            else:
                llm.invoke(prompt, force_tier=4, aco_run_id=run_key)
            out["answered"] += 1
        except BudgetExceededError:
            out["refused"] += 1
        except AllTiersFailedError:
            out["failed"] += 1
    if hang:
        print("ready", flush=True)
        llm.invoke("HANG until killed", force_tier=4, aco_run_id=run_key)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
