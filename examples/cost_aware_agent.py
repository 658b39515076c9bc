"""The seed's "Custom Agent Harness" (CostAwareAgent), runnable offline.

The loop is the seed's, line for line: route the run, route every step, escalate a failed
cheap step through the cascade, check for doom, end the run with a trace. The tiers are
scripted fake chat models (``langchain_core``'s ``FakeListChatModel``), so nothing needs a
key or a network: a tier "succeeds" at a step when it is at or above the step's
``min_tier``, and a failing tier's answer carries low logprobs so the cascade escalates.

Run::

    python examples/cost_aware_agent.py                    # prints the trace summary
    python examples/cost_aware_agent.py --trace out.jsonl  # and appends the trace there
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

from langchain_core.language_models.fake_chat_models import FakeListChatModel

from aco_langchain.agent.optimizer import ACOOptimizer
from aco_langchain.agent.per_step import PerStepRouter
from aco_langchain.config import ACOConfig
from aco_langchain.providers.tiers import estimate_tokens


@dataclass
class Step:
    """One planned step: what it does and the lowest tier that can do it."""

    num: int
    action: str
    min_tier: int = 1


@dataclass
class Response:
    """A tier's answer to a step, with the logprobs the cascade reads."""

    text: str
    success: bool
    logprobs: dict
    tier: int


#: The scripted plan for "Fix the auth bug": cheap reads, one edit that needs tier 4.
DEFAULT_PLAN = [
    Step(1, "Read the failing auth test", 1),
    Step(2, "Search the code for the token check", 1),
    Step(3, "Fix the expired-token comparison in auth.py", 4),
    Step(4, "Run the tests to verify the fix", 2),
]


def scripted_logprobs(confident: bool, n: int = 8) -> dict:
    """OpenAI-shaped logprobs: p=0.98 per token when confident, p=0.35 when not."""
    lp = math.log(0.98 if confident else 0.35)
    return {"content": [{"token": f"t{i}", "logprob": lp, "top_logprobs": []} for i in range(n)]}


class CostAwareAgent:
    """The seed's harness. ``tier_models``: tier -> chat model (scripted fakes by default)."""

    def __init__(
        self,
        max_budget: float = 5.0,
        *,
        config: ACOConfig | None = None,
        plan: list[Step] | None = None,
        optimizer: ACOOptimizer | None = None,
    ) -> None:
        self.config = config or ACOConfig()
        self.opt = optimizer or ACOOptimizer(self.config)
        self.ps = PerStepRouter(max_budget=max_budget, config=self.config)
        self.plan = list(plan or DEFAULT_PLAN)
        self.tier_models = {
            n: FakeListChatModel(responses=[f"[{self.config.tier(n).model_id}] step done"])
            for n in range(1, 6)
        }
        self.has_errors = False
        self._cursor = 0

    def plan_next_step(self) -> Step | None:
        """The next step of the plan (None when the plan is finished)."""
        if self._cursor >= len(self.plan):
            return None
        return self.plan[self._cursor]

    def call_model(self, model_id: str, step: Step) -> Response:
        """Call the tier's (fake) model, record the call and its actual spend."""
        tier = self.config.tier_of_model(model_id)
        assert tier is not None
        text = str(self.tier_models[tier].invoke(step.action).content)
        success = tier >= step.min_tier
        in_tok, out_tok = 1500 + estimate_tokens(step.action), 400
        call = self.opt.record_model_call(
            model_id=model_id,
            input_tokens=in_tok,
            output_tokens=out_tok,
            output=f"{text} #{step.num} ok={success}",
            action=step.action,
        )
        self.ps.record_spend(call.cost, step_num=step.num)
        return Response(text, success, scripted_logprobs(success), tier)

    def run(self, request: str):  # -> Trace
        """The seed's loop (comments mark its lines)."""
        # Initial routing
        result = self.opt.start_run(request, max_budget=self.ps.max_budget)
        tier = result["routing"]["tier"]  # noqa: F841  (the seed reads it; steps re-route)
        model = result["routing"]["model_id"]  # noqa: F841
        done = False
        # Per-step execution
        while not done and self.ps.budget_remaining > 0:
            step = self.plan_next_step()
            if step is None:
                break
            routing = self.ps.route_step(step.action, step.num, has_prior_failures=self.has_errors)
            if routing.stop:
                break
            response = self.call_model(routing.model_id, step)
            # Check if we need to escalate
            if not response.success and routing.adjusted_tier < 5:
                cascade = self.opt.cascade_step(
                    request, routing.adjusted_tier, response.logprobs, response.text
                )
                if cascade.escalated:
                    response = self.call_model(cascade.model_id, step)
            self.has_errors = not response.success
            if response.success:
                self._cursor += 1
                done = self._cursor >= len(self.plan)
            # Check doom
            doom = self.opt.check_doom(self.ps.total_spent)
            if doom.doomed:
                break
        trace = self.opt.end_run(success=done, claimed_done=done)
        return trace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--request", default="Fix the auth bug")
    parser.add_argument("--budget", type=float, default=5.0)
    parser.add_argument("--trace", default=None, help="Append the trace to this JSONL file.")
    args = parser.parse_args()
    config = ACOConfig(trace_path=args.trace) if args.trace else ACOConfig()
    trace = CostAwareAgent(max_budget=args.budget, config=config).run(args.request)
    print(f"trace {trace.trace_id}: {trace.final_outcome}, success={trace.task_success}")
    for s in trace.steps:
        m = s.model_call
        if m is not None:
            esc = " (escalated)" if m.escalated else ""
            print(f"  step {s.step_num}: tier {m.tier} {m.model_id}{esc} ${m.cost:.4f}  {s.action}")
    print(f"total cost ${trace.total_cost:.4f}")
    if args.trace:
        print(f"trace appended to {args.trace}; try: aco stats {args.trace}")


if __name__ == "__main__":
    main()
