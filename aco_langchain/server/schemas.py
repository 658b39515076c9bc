"""Request and response bodies of ``aco serve`` (pydantic): OpenAI's chat completions wire
format with our extra fields, and seed 2's ``/generate`` and ``/route`` exactly.

Unknown request fields are a 400 naming the field (as OpenAI answers), so a typo such as
``max_cost`` instead of ``max_cost_usd`` is never silently ignored.

Example:
    ```python
    req = ChatCompletionRequest.model_validate(
        {"model": "aco", "messages": [{"role": "user", "content": "hi"}], "max_cost_usd": 0.01}
    )
    ```
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: Content part types the tiers understand, and the field each one needs.
PART_FIELDS = {
    "text": "text",
    "image_url": "image_url",
    "input_audio": "input_audio",
    "file": "file",
    "refusal": "refusal",
}


def part_problem(part: dict[str, Any]) -> str | None:
    """What is wrong with one content part (pure), or None.

    Example:
        ```python
        part_problem({"type": "text", "text": "  "})   # 'the text part is blank: ...'
        ```
    """
    kind = part.get("type")
    if kind not in PART_FIELDS:
        return f"type {str(kind)[:40]!r} is unknown: use one of {', '.join(PART_FIELDS)}"
    value = part.get(PART_FIELDS[kind])
    if kind == "text" and not (isinstance(value, str) and value.strip()):
        return "the text part is blank: send its text, or leave the part out"
    if value is None:
        return f"a {kind} part needs its {PART_FIELDS[kind]!r} field"
    return None


#: ``response_format`` types OpenAI's API knows.
RESPONSE_FORMATS = ("text", "json_object", "json_schema")


def response_format_problem(value: dict[str, Any] | None) -> str | None:
    """What is wrong with a ``response_format`` (pure), or None: a request-shape mistake is
    the caller's 400, never a tier call that is billed and then cannot be parsed.

    Example:
        ```python
        response_format_problem({"type": "nonsense"})   # "type 'nonsense' is unknown: ..."
        ```
    """
    if value is None:
        return None
    kind = value.get("type")
    if kind not in RESPONSE_FORMATS:
        return f"type {str(kind)[:40]!r} is unknown: use one of {', '.join(RESPONSE_FORMATS)}"
    if kind == "json_schema":
        spec = value.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            return 'json_schema needs {name, schema}: e.g. {"name": "answer", "schema": {...}}'
        if not isinstance(spec.get("schema", {}), dict):
            return "json_schema.schema must be a JSON schema object"
    return None


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChatMessage(BaseModel):
    """One message in OpenAI's format (string or content-part content)."""

    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None

    @model_validator(mode="after")
    def _content_present(self) -> ChatMessage:
        if self.content is None and not (self.role == "assistant" and self.tool_calls):
            raise ValueError(f"a {self.role} message needs content")
        if isinstance(self.content, list):
            if not self.content and not self.tool_calls:
                raise ValueError(f"a {self.role} message needs content: the part list is empty")
            for i, part in enumerate(self.content):
                problem = part_problem(part)
                if problem:
                    raise ValueError(f"content part {i}: {problem}")
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs tool_call_id")
        return self


class FunctionSpec(BaseModel):
    """A tool's function: name, description, JSON-schema parameters."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(..., min_length=1, max_length=64)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolSpec(_Body):
    """One tool in OpenAI's format."""

    type: Literal["function"] = "function"
    function: FunctionSpec


class StreamOptions(BaseModel):
    """``stream_options``: ``include_usage`` adds a final usage chunk."""

    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class ChatCompletionRequest(_Body):
    """``POST /v1/chat/completions``: OpenAI's fields plus the router's.

    ``model`` is ``aco`` (route), ``tier-N`` or a tier's model_id (force that tier). The
    router's fields are seed 2's constraints (``max_cost_usd``, ``max_latency_ms``,
    ``min_quality``), ``task_type``/``risk`` hints, and ``cache`` (true: use the response cache
    even at a temperature above 0; false: bypass it).
    """

    model: str = Field(..., min_length=1)
    messages: list[ChatMessage] = Field(..., min_length=1)
    tools: list[ToolSpec] | None = None
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, ge=0.0, le=1.0)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    n: int | None = Field(None, ge=1, le=1, description="Only 1 is supported.")
    stream: bool = False
    stream_options: StreamOptions | None = None
    presence_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    seed: int | None = None
    response_format: dict[str, Any] | None = None
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    reasoning_effort: str | None = None
    user: str | None = Field(None, description="The run key (budget) when no x-aco-run-id.")
    metadata: dict[str, str] | None = None
    store: bool | None = None
    service_tier: str | None = None
    # -- the router's fields (extra body fields for OpenAI clients) --
    max_cost_usd: float | None = Field(None, ge=0.0)
    max_latency_ms: float | None = Field(None, gt=0.0)
    min_quality: float | None = Field(None, ge=0.0, le=1.0)
    task_type: str | None = None
    risk: Literal["low", "medium", "high", "critical"] | None = None
    cache: bool | None = Field(
        None, description="true: cache even above temperature 0; false: bypass the cache."
    )

    @field_validator("response_format")
    @classmethod
    def _known_response_format(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        problem = response_format_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _tool_choice_needs_tools(self) -> ChatCompletionRequest:
        if self.tool_choice not in (None, "none") and not self.tools:
            raise ValueError("tool_choice needs tools: send tools, or drop tool_choice")
        return self


class GenerateRequest(_Body):
    """Seed 2's ``POST /generate`` request, field for field."""

    prompt: str = Field(..., min_length=1)
    max_cost_usd: float | None = Field(None, ge=0.0)
    max_latency_ms: float | None = Field(None, gt=0.0)
    min_quality: float | None = Field(None, ge=0.0, le=1.0)
    force_model: str | None = Field(
        None, min_length=1, description="aco, tier-N, or a tier's model_id."
    )


class GenerateResponse(BaseModel):
    """Seed 2's ``POST /generate`` response, field for field."""

    text: str
    chosen_model: str
    tokens_in: int
    tokens_out: int
    latency_ms: float
    estimated_cost_usd: float
    quality_proxy: float | None = Field(
        ...,
        description="The answer's measured confidence, else the router's predicted success; "
        "null when neither exists (a forced tier without logprobs).",
    )
    route_reason: str
    cache_hit: bool
    saved_cost_usd: float


class RouteRequestBody(_Body):
    """Seed 2's ``POST /route`` request: the prompt, a cost cap (USD), a latency cap (s)."""

    prompt: str = Field(..., min_length=1)
    max_cost: float | None = Field(None, ge=0.0)
    max_latency: float | None = Field(None, gt=0.0, description="Seconds.")


class RouteResponse(BaseModel):
    """What ``/route`` decides without calling a model (seed 2's names, as ``/generate``)."""

    chosen_model: str
    tier: int
    estimated_cost_usd: float
    quality_proxy: float | None
    route_reason: str
    unavailable: dict[str, str] | None = None
    """Tiers that could not be called right now, and why (the decision is made regardless)."""


__all__ = [
    "ChatCompletionRequest",
    "ChatMessage",
    "GenerateRequest",
    "GenerateResponse",
    "RouteRequestBody",
    "RouteResponse",
    "StreamOptions",
    "ToolSpec",
]
