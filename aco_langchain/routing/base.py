"""The routing contract: what a router sees, what it says, what the policy decides.

A ``Router`` only *assesses* a request (task type, difficulty, each tier's chance of
success and the tier it would pick). ``policy.decide`` turns that assessment into a
``RouteDecision`` by applying what every router shares: per-call constraints, task
floors, local-first, budgets and tier availability. So a learned router and the rule
router plug into the same place.

Usage::

    from aco_langchain.routing import RouteRequest, get_router, decide
    req = RouteRequest.from_text("What is 2+2?")
    decision = decide(get_router(cfg).assess(req, cfg), req, cfg)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from aco_langchain.config import ACOConfig

Risk = Literal["low", "medium", "high", "critical"]
Complexity = Literal["simple", "moderate", "complex", "critical"]


class RouteConstraints(BaseModel):
    """Per-call options (kwargs or RunnableConfig ``configurable``)."""

    model_config = ConfigDict(extra="forbid")

    force_tier: int | None = Field(None, ge=1, le=5)
    force_model: str | None = None
    max_cost_usd: float | None = Field(None, ge=0.0)
    max_latency_ms: float | None = Field(None, gt=0.0)
    min_quality: float | None = Field(None, ge=0.0, le=1.0)
    task_type: str | None = None
    risk: Risk | None = None


class RouteRequest(BaseModel):
    """What is known before the call: the prompt, its structure, the tools bound."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(..., description="The prompt text (all message contents joined).")
    last_user_text: str | None = Field(None, description="The latest human turn, if any.")
    roles: list[str] = Field(default_factory=list, description="Message roles in order.")
    n_tools: int = Field(0, ge=0, description="How many tools are bound to the call.")
    expected_output_tokens: int | None = Field(None, ge=0)
    constraints: RouteConstraints = Field(default_factory=RouteConstraints)

    @classmethod
    def from_text(cls, text: str, **constraints: Any) -> RouteRequest:
        """A single-turn request. ``constraints`` are RouteConstraints fields."""
        return cls(
            text=text,
            last_user_text=text,
            roles=["human"],
            constraints=RouteConstraints(**constraints),
        )

    @property
    def routing_text(self) -> str:
        """The text the task is judged by: the latest user turn when known."""
        return self.last_user_text or self.text


class Assessment(BaseModel):
    """A router's view of a request, before policy."""

    task_type: str
    difficulty: int = Field(..., ge=1, le=5)
    complexity: Complexity
    suggested_tier: int = Field(..., ge=1, le=5)
    confidence: float = Field(..., ge=0.0, le=1.0, description="P(success) at suggested_tier.")
    p_success: dict[int, float] = Field(
        default_factory=dict, description="Predicted success per tier (1-5), when known."
    )
    reason: str = ""
    router: str = "rules"
    risk: Risk | None = Field(
        None,
        description="Risk inferred from the request (seed 3's critical markers: production, "
        "deploy, payment, credentials...); a per-call ``risk`` wins over it.",
    )


class RouteDecision(BaseModel):
    """The routed tier and why: what ``aco route`` prints and response_metadata carries."""

    tier: int = Field(..., ge=1, le=5)
    model_id: str
    confidence: float = Field(..., ge=0.0, le=1.0)
    reason: str
    cost_estimate: float = Field(..., ge=0.0, description="Estimated USD for this call.")
    task_type: str
    difficulty: int = Field(..., ge=1, le=5)
    complexity: Complexity = "simple"
    unavailable: dict[int, str] = Field(
        default_factory=dict, description="Tiers skipped as unavailable, with why."
    )
    budget_exceeded: bool = Field(False, description="The run's budget forced this tier.")

    def as_routing_dict(self) -> dict[str, Any]:
        """The seed's ``start_run(...)["routing"]`` shape."""
        return {
            "tier": self.tier,
            "model_id": self.model_id,
            "confidence": round(self.confidence, 4),
            "cost_estimate": self.cost_estimate,
            "task_type": self.task_type,
            "difficulty": self.difficulty,
            "reason": self.reason,
        }


@runtime_checkable
class Router(Protocol):
    """Anything that can assess a request. Implementations: RuleRouter, LearnedRouter."""

    name: str

    def assess(self, request: RouteRequest, config: ACOConfig) -> Assessment:
        """Judge the request; must not do I/O (decisions stay pure and fast)."""
        ...
