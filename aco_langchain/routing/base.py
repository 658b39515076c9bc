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

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, field_validator

from aco_langchain.config import TASK_TYPES
from aco_langchain.errors import InvalidRequestError

if TYPE_CHECKING:
    from aco_langchain.config import ACOConfig

Risk = Literal["low", "medium", "high", "critical"]
_M = TypeVar("_M", bound=BaseModel)


def _trusted(cls: type[_M], values: dict[str, Any], given: bool = True) -> _M:
    """An instance from values our own code built and checked (every field, in field
    order): ``model_construct`` without its per-field work, for the routing hot path.
    ``given``: the values count as passed in (``model_fields_set``), else as defaults."""
    obj = cls.__new__(cls)
    object.__setattr__(obj, "__dict__", values)
    object.__setattr__(obj, "__pydantic_fields_set__", set(values) if given else set())
    object.__setattr__(obj, "__pydantic_extra__", None)
    object.__setattr__(obj, "__pydantic_private__", None)
    return obj


Complexity = Literal["simple", "moderate", "complex", "critical"]


#: What each per-call option accepts, for error messages that name the fix.
OPTION_VALUES: dict[str, str] = {
    "force_tier": "an int tier number 1-5",
    "force_model": "a tier's model_id or provider model name (a string)",
    "max_cost_usd": "a number of USD >= 0",
    "max_latency_ms": "a number of milliseconds > 0",
    "min_quality": "a number between 0 and 1",
    "task_type": "one of " + ", ".join(TASK_TYPES),
    "risk": "one of low, medium, high, critical",
    "max_tokens": "an int number of output tokens > 0",
}


class RouteConstraints(BaseModel):
    """Per-call options (kwargs or RunnableConfig ``configurable``).

    Types are strict where a lax coercion hides a mistake: ``force_tier=True`` is not
    tier 1, and ``task_type`` must be one of the task types the routers know.
    """

    model_config = ConfigDict(extra="forbid")

    force_tier: StrictInt | None = Field(None, ge=1, le=5)
    force_model: str | None = Field(None, min_length=1)
    max_cost_usd: float | None = Field(None, ge=0.0)
    max_latency_ms: float | None = Field(None, gt=0.0)
    min_quality: float | None = Field(None, ge=0.0, le=1.0)
    task_type: str | None = None
    risk: Risk | None = None

    @field_validator("max_cost_usd", "max_latency_ms", "min_quality", mode="before")
    @classmethod
    def _no_bool(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("a bool is not a number")
        return value

    @field_validator("task_type")
    @classmethod
    def _known_task(cls, value: str | None) -> str | None:
        if value is not None and value not in TASK_TYPES:
            raise ValueError(f"unknown task type {value!r}")
        return value

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> RouteConstraints:
        """Validate per-call options; a bad one raises naming it and what it accepts.

        Args:
            options: option name -> value (``RouteConstraints`` fields only).

        Returns:
            The validated constraints.

        Raises:
            InvalidRequestError: an unknown option or a value of the wrong type or range.

        Example:
            ```python
            RouteConstraints.from_options({"force_tier": 3})
            RouteConstraints.from_options({"force_tier": True})   # InvalidRequestError
            ```
        """
        if not options:  # nothing to check: every option unset
            return _trusted(cls, dict.fromkeys(cls.model_fields), given=False)
        try:
            return cls(**options)
        except ValidationError as err:
            # from None: pydantic's error repeats every input value, which may hold anything
            raise InvalidRequestError(_option_errors(err)) from None


def _option_errors(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        name = str(e["loc"][0]) if e["loc"] else "?"
        if e["type"] == "extra_forbidden":
            parts.append(f"unknown option {name!r}: use one of {', '.join(OPTION_VALUES)}")
            continue
        want = OPTION_VALUES.get(name, "a valid value")
        got = e.get("input")
        # numbers and flags are shown; strings only by type (they could be anything)
        shown = f"={got!r}" if isinstance(got, bool | int | float) else f" ({type(got).__name__})"
        parts.append(f"option {name}{shown} is not accepted: give {want}")
    return "; ".join(parts)


class RouteRequest(BaseModel):
    """What is known before the call: the prompt, its structure, the tools bound.

    Example:
        ```python
        req = RouteRequest.from_text("Fix the auth bug", risk="high")
        req.routing_text, req.constraints.risk
        ```
    """

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
            constraints=RouteConstraints.from_options(constraints),
        )

    @classmethod
    def trusted(
        cls,
        *,
        text: str,
        last_user_text: str | None,
        roles: list[str],
        n_tools: int,
        expected_output_tokens: int | None,
        constraints: RouteConstraints,
    ) -> RouteRequest:
        """A request from parts the caller already checked (the chat model's: texts it
        joined, roles it read, a positive ``max_tokens``, validated constraints), without a
        second validation pass. Anything else should construct (and validate) normally.

        Example:
            ```python
            RouteRequest.trusted(text="hi", last_user_text="hi", roles=["human"], n_tools=0,
                                 expected_output_tokens=None, constraints=RouteConstraints())
            ```
        """
        return _trusted(
            cls,
            {
                "text": text,
                "last_user_text": last_user_text,
                "roles": roles,
                "n_tools": n_tools,
                "expected_output_tokens": expected_output_tokens,
                "constraints": constraints,
            },
        )

    @property
    def routing_text(self) -> str:
        """The text the task is judged by: the latest user turn when known."""
        return self.last_user_text or self.text


class Assessment(BaseModel):
    """A router's view of a request, before policy.

    Example:
        ```python
        a = RuleRouter().assess(RouteRequest.from_text("What is 2+2?"), ACOConfig())
        a.suggested_tier, a.p_success, a.task_type
        ```
    """

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

    @classmethod
    def trusted(
        cls,
        *,
        task_type: str,
        difficulty: int,
        complexity: Complexity,
        suggested_tier: int,
        confidence: float,
        p_success: dict[int, float],
        reason: str,
        router: str,
        risk: Risk | None,
    ) -> Assessment:
        """An assessment from values a router built from validated parts (every field
        given, already typed): ``model_construct`` without its per-field work, for the
        routing hot path. Anything else should construct (and validate) normally.

        Returns:
            The assessment, equal to ``Assessment(**same values)``.

        Example:
            ```python
            Assessment.trusted(task_type="general", difficulty=1, complexity="simple",
                               suggested_tier=1, confidence=0.9, p_success={1: 0.9},
                               reason="", router="mine", risk=None)
            ```
        """
        return _trusted(
            cls,
            {
                "task_type": task_type,
                "difficulty": difficulty,
                "complexity": complexity,
                "suggested_tier": suggested_tier,
                "confidence": confidence,
                "p_success": p_success,
                "reason": reason,
                "router": router,
                "risk": risk,
            },
        )


class RouteDecision(BaseModel):
    """The routed tier and why: what ``aco route`` prints and response_metadata carries.

    A forced tier (``force_tier`` / ``force_model``) is decided without any assessment:
    its ``confidence``, ``difficulty`` and ``complexity`` are None.

    Example:
        ```python
        d = route(RouteRequest.from_text("What is 2+2?"), ACOConfig())
        d.tier, d.model_id, d.reason, d.cost_estimate
        ```
    """

    tier: int = Field(..., ge=1, le=5)
    model_id: str
    confidence: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="The router's predicted success at ``tier`` (not a measure of any answer).",
    )
    reason: str
    cost_estimate: float = Field(..., ge=0.0, description="Estimated USD for this call.")
    task_type: str
    difficulty: int | None = Field(None, ge=1, le=5)
    complexity: Complexity | None = "simple"
    unavailable: dict[int, str] = Field(
        default_factory=dict, description="Tiers skipped as unavailable, with why."
    )
    budget_exceeded: bool = Field(False, description="The run's budget forced this tier.")
    forced: bool = Field(False, description="force_tier / force_model chose the tier.")
    degraded_from: int | None = Field(
        None, description="The tier decided before availability, when ``tier`` is below it."
    )
    lowest_tier: int = Field(
        1,
        ge=1,
        le=5,
        description="The lowest tier that may answer (a forced tier or a risk floor unless "
        "routing.allow_degrade); fallbacks never go below it.",
    )
    context_tokens: int = Field(
        0, ge=0, description="Prompt token estimate plus the output tokens it was sized for."
    )

    @classmethod
    def trusted(cls, values: dict[str, Any]) -> RouteDecision:
        """A decision from values the policy built and checked (every field, in field
        order), without a second validation pass (``policy.decide``'s hot path).

        Example:
            ```python
            RouteDecision.trusted(decision.model_dump())
            ```
        """
        return _trusted(cls, values)

    @property
    def predicted_success(self) -> float | None:
        """The router's predicted success at the chosen tier (``confidence``)."""
        return self.confidence

    def as_routing_dict(self) -> dict[str, Any]:
        """The seed's ``start_run(...)["routing"]`` shape."""
        return {
            "tier": self.tier,
            "model_id": self.model_id,
            "confidence": None if self.confidence is None else round(self.confidence, 4),
            "cost_estimate": self.cost_estimate,
            "task_type": self.task_type,
            "difficulty": self.difficulty,
            "reason": self.reason,
        }


@runtime_checkable
class Router(Protocol):
    """Anything that can assess a request. Implementations: RuleRouter, LearnedRouter.

    Example:
        ```python
        class AlwaysLocal:
            name = "local"
            def assess(self, request: RouteRequest, config: ACOConfig) -> Assessment:
                return RuleRouter().assess(request, config).model_copy(update={"suggested_tier": 1})

        ACORouterChatModel(router=AlwaysLocal())
        ```
    """

    name: str

    def assess(self, request: RouteRequest, config: ACOConfig) -> Assessment:
        """Judge the request; must not do I/O (decisions stay pure and fast)."""
        ...
