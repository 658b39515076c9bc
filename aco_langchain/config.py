"""ACOConfig: the seed's ``config.yaml`` as a pydantic model, plus a YAML loader.

Usage::

    from aco_langchain import ACOConfig, load_config
    cfg = ACOConfig()                       # the seed's five-tier defaults
    cfg = load_config("config.yaml")        # a user's file; unknown keys are errors
    cfg.tier(1).model_id                    # 'tiny-local-3b'
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from aco_langchain.config_deprecations import moved_config_keys, reading
from aco_langchain.config_learning import LearningSettings
from aco_langchain.errors import ConfigError, LedgerURLError
from aco_langchain.ledger_url import parse_ledger_url
from aco_langchain.redact import mask
from aco_langchain.server_settings import CacheSettings, ServerSettings

TIER_NUMBERS = (1, 2, 3, 4, 5)
TIER_KEYS = tuple(f"tier{n}" for n in TIER_NUMBERS)
_TIER_KEY = dict(zip(TIER_NUMBERS, TIER_KEYS, strict=True))

#: Task types the routers know. Floors may only name these.
TASK_TYPES = (
    "quick_answer",
    "coding",
    "math",
    "reasoning",
    "research",
    "writing",
    "summarization",
    "legal_regulated",
    "long_horizon",
    "general",
)

MAX_OUTPUT_TOKENS_LIMIT = 1_000_000  #: the largest output cap a config may set
LOCAL_OUTPUT_TOKENS = 256  #: local tier's cap: ~53 tok/s here (1,024 took 19.2 s) -> ~5 s

Provider = str  #: a family name or alias of ``aco_langchain.provider_families``


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class RoutingSettings(_Strict):
    """The seed's ``routing:`` block plus seed 3's policy fields."""

    safety_threshold: float = Field(
        0.30,
        ge=0.0,
        le=1.0,
        description="Below this predicted success/confidence a tier is not trusted: escalate.",
    )
    downgrade_threshold: float = Field(
        0.90,
        ge=0.0,
        le=1.0,
        description="At or above this predicted success a cheaper tier is taken (downgrade).",
    )
    max_retries: int = Field(3, ge=0, le=20, description="Retries per tier before fallback.")
    retry_base_delay_s: float = Field(0.5, ge=0.0, description="First retry's backoff, seconds.")
    cooldown_after: int = Field(2, gt=0, description="Exhausted calls in a row before cooldown.")
    cooldown_s: float = Field(30.0, ge=0.0, description="How long a failing tier sits out, s.")
    max_cost_per_task: float = Field(5.0, ge=0.0, description="USD budget for one run/task.")
    prefer_local: bool = Field(True, description="Take the local tier when it is good enough.")
    allow_cloud_fallback: bool = Field(True, description="May a failed local call go to cloud?")
    max_latency_per_call_s: float = Field(
        30.0, gt=0.0, description="Deadline of one call (and of one `aco serve` request), s."
    )
    max_tokens_per_task: int = Field(100_000, gt=0, description="Token budget for one run.")
    attempt_share: float = Field(0.5, gt=0.0, le=1.0, description="Deadline share per attempt.")
    max_output_tokens: int = Field(
        1024,
        gt=0,
        le=MAX_OUTPUT_TOKENS_LIMIT,
        description="Output cap sent to the tier on every call (max_tokens / num_predict) "
        "unless the call sets max_tokens; budgets hold input + this cap at the tier's price.",
    )
    on_budget_exceeded: Literal["force_local", "raise"] = Field(
        "force_local",
        description="What happens once a run's spend reaches max_cost_per_task.",
    )
    quality_target: float = Field(
        0.95,
        gt=0.0,
        le=1.0,
        description="Learned router: fraction of the best tier's quality to keep.",
    )
    strict: bool = Field(
        False,
        description="Raise instead of using the nearest tier (up or down) when the decided "
        "tier is unavailable; allow_degrade governs only going down.",
    )
    allow_degrade: bool | None = Field(
        None,
        description="May a call be answered below the tier decided for it (that tier is "
        "unavailable or failed)? None (default): yes for unforced calls without a risk "
        "floor, never below a forced tier or a risk floor (TierUnavailableError); true: "
        "always (metadata says degraded_from); false: never.",
    )


class TierSpec(_Strict):
    """One tier of the five: who answers and what it costs. ``model`` may be an
    ``init_chat_model`` string (``TierSpec(model="anthropic:claude-haiku-4-5")``); unset fields
    come from the family and the model's profile (``provider_families.family_updates``)."""

    model_id: str = Field("", description="Name in routing output; default: the model's.")
    provider: Provider = Field("openai", description="Provider family (provider_families).")
    model: str | None = Field(None, description='Model name, or "provider:model" (a string).')
    cost_per_1k_input: float | None = Field(None, ge=0.0)
    cost_per_1k_output: float | None = Field(None, ge=0.0)
    base_url: str | None = None
    api_key_env: str | None = Field(None, description="Key env var; default: the provider's.")
    max_context: int = Field(32_768, gt=0)
    capabilities: list[str] = Field(default_factory=lambda: ["tools"])
    is_local: bool = False
    avg_latency_ms: float = Field(1000.0, ge=0.0)
    max_output_tokens: int | None = Field(None, gt=0, le=MAX_OUTPUT_TOKENS_LIMIT)
    kwargs: dict[str, Any] = Field(default_factory=dict, description="To the model class.")
    recording: str | list[str] | None = Field(
        None,
        description="provider: replay only: the recording(s) the tier answers from "
        "(RouterBench CSV or replay JSONL); `model` names the recorded model.",
    )

    @property
    def provider_model(self) -> str:
        """The name sent to the provider (``model`` or ``model_id``)."""
        return self.model or self.model_id

    @property
    def supports_tools(self) -> bool:
        return "tools" in self.capabilities

    @model_validator(mode="before")
    @classmethod
    def _split_model_string(cls, data: Any) -> Any:
        # "anthropic:claude-haiku-4-5" names the provider; a tier may then omit `provider`.
        from aco_langchain.provider_families import split_tier_model

        return split_tier_model(data)

    @model_validator(mode="after")
    def _resolve_family(self) -> TierSpec:
        # model_id from model; the family's key variable, locality, profile (unset fields).
        from aco_langchain.provider_families import family_updates

        for key, value in family_updates(self).items():
            object.__setattr__(self, key, value)
        return self


class LocalModelSettings(_Strict):
    """Where the local llama.cpp tier is built and how it is served (see local_model.py)."""

    cache_dir: str = Field(
        default_factory=lambda: os.environ.get(
            "ACO_CACHE_DIR", str(Path.home() / ".cache" / "aco-langchain")
        )
    )
    host: str = "127.0.0.1"
    port: int | None = Field(None, ge=1, le=65535, description="None: pick a free port.")
    ctx_size: int = Field(2048, gt=0)
    threads: int = Field(
        1, gt=0, description="llama.cpp threads; 2 threads stall each other on a busy 2-core box"
    )


class CascadeSettings(_Strict):
    """Confidence cascade (see cascade.py)."""

    enabled: bool = False
    confidence_threshold: float | None = Field(
        None, ge=0.0, le=1.0, description="None: the calibrated default shipped with the package."
    )
    top_logprobs: int = Field(3, ge=0, le=20)
    buffer_stream: bool = Field(
        True, description="Buffer the cheap tier's stream until the escalation decision."
    )


class AgentSettings(_Strict):
    """Agent-level controls: doom detector, gates (see doom.py, gates.py)."""

    max_steps: int = Field(25, gt=0)
    no_progress_steps: int = Field(5, gt=0)
    max_repeated_failures: int = Field(3, gt=0)
    verifier_budget_ratio: float = Field(0.5, ge=0.0, le=1.0)
    tool_costs: dict[str, float] = Field(default_factory=dict)  # USD/call; unpriced: $0, runs
    max_identical_retries: int = Field(0, ge=0)  # reruns of an identical failed tool call
    on_low_budget: Literal["local", "stop"] = "local"
    #: Run policy (`aco replay --runs --write-config`, agent/run_ladder.py): model ids cheapest
    #: first; a run the verifier rejects or its step cap (doom step_limit) stops goes to the next.
    escalation_ladder: list[str] = Field(default_factory=list)
    step_caps: dict[str, Annotated[int, Field(gt=0)]] = Field(default_factory=dict)
    require_verified: bool = False  # only a verifier's PASS accepts a run ("not verified": next)


class LedgerSettings(_Strict):
    """Where spend is recorded and budgets are held (see ``aco_langchain.spend.ledger``)."""

    url: str | None = Field(
        None,
        description="memory://, sqlite:///path or postgresql://...; None: $ACO_LEDGER_URL or "
        "the SQLite default under the user data dir.",
    )
    hold_ttl_s: float | None = Field(
        None,
        gt=0.0,
        description="How long a call's hold lives if its process dies; at least "
        "routing.max_latency_per_call_s (validated); None: max_latency_per_call_s x "
        "(max_retries + 1) + 30 s.",
    )
    baseline_tier: int = Field(
        4, ge=1, le=5, description="The tier savings are measured against (seed: gpt-4-class)."
    )

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_ledger_url(value)
            except LedgerURLError as err:
                raise ValueError(str(err)) from None
        return value


class BudgetSettings(_Strict):
    """Budgets beyond the run's: per user, API key, tag, and for all spend, per period."""

    users: dict[str, float] = Field(default_factory=dict, description="USD per user id.")
    keys: dict[str, float] = Field(default_factory=dict, description="USD per API key id.")
    tags: dict[str, float] = Field(default_factory=dict, description="USD per call tag.")
    total: float | None = Field(None, ge=0.0, description="USD for all spend in a period.")
    budget_duration: Literal["month", "day", "forever"] = Field(
        "month", description="The period the user/key/tag/total budgets reset on (UTC)."
    )

    @field_validator("users", "keys", "tags")
    @classmethod
    def _non_negative(cls, value: dict[str, float]) -> dict[str, float]:
        for name, usd in value.items():
            if usd < 0:
                raise ValueError(f"budget for {name!r} is negative ({usd}): use USD >= 0")
        return value


def default_models() -> dict[str, TierSpec]:
    """The five default tiers. Tier 1 is the local model ($0); tiers 2-5 are real OpenAI
    models without prices here, so genai-prices prices them, rising tier by tier. Tiers 2-4
    answer on Chat Completions with logprobs (the cascade's confidence); tier 5 reasons."""
    return {
        "tier1": TierSpec(
            model_id="tiny-local-3b",
            provider="local",
            model="smollm2-135m-instruct",
            cost_per_1k_input=0.0,
            cost_per_1k_output=0.0,
            base_url=None,  # filled from the running local server (aco local-model start)
            max_context=2048,
            # tools and structured_output by constrained decoding (providers/local/tools.py)
            capabilities=["chat", "tools", "logprobs", "structured_output"],
            is_local=True,
            avg_latency_ms=300.0,
            max_output_tokens=LOCAL_OUTPUT_TOKENS,
        ),
        "tier2": TierSpec(
            model_id="cheap-cloud-8b",
            provider="openai",
            model="gpt-4o-mini",
            api_key_env="OPENAI_API_KEY",
            max_context=128_000,
            capabilities=["chat", "tools", "logprobs", "structured_output"],
            avg_latency_ms=600.0,
        ),
        "tier3": TierSpec(
            model_id="medium-70b",
            provider="openai",
            model="gpt-4.1-mini",
            api_key_env="OPENAI_API_KEY",
            max_context=1_047_576,  # its profile's max_input_tokens, as gpt-4.1's
            capabilities=["chat", "tools", "logprobs", "structured_output"],
            avg_latency_ms=900.0,
        ),
        "tier4": TierSpec(
            model_id="frontier-latest",
            provider="openai",
            model="gpt-4.1",
            api_key_env="OPENAI_API_KEY",
            max_context=1_047_576,
            capabilities=["chat", "tools", "logprobs", "structured_output"],
            avg_latency_ms=1500.0,
        ),
        "tier5": TierSpec(
            model_id="specialist-expert",
            provider="openai",
            model="gpt-5.5",  # 2.5x / 3.75x gpt-4.1's list price: an upgrade to weigh
            api_key_env="OPENAI_API_KEY",
            max_context=1_050_000,
            capabilities=["chat", "tools", "structured_output"],
            avg_latency_ms=4000.0,
        ),
    }


#: The seed deployment guide's illustrative $/1K prices (input, output) per tier; shipped as
#: ``examples/seed-config.yaml``. Not real prices: tier 4's $1/1K input is ~500x gpt-4.1's.
SEED_PRICES: dict[str, tuple[float, float]] = {
    "tier1": (0.0, 0.0),
    "tier2": (0.05, 0.05),
    "tier3": (0.30, 0.30),
    "tier4": (1.00, 3.00),
    "tier5": (1.50, 1.50),
}


def seed_priced_models() -> dict[str, TierSpec]:
    """The default tiers at the seed's illustrative prices (what seed-config.yaml gives)."""
    return {
        key: spec.model_copy(
            update={
                "cost_per_1k_input": SEED_PRICES[key][0],
                "cost_per_1k_output": SEED_PRICES[key][1],
            }
        )
        for key, spec in default_models().items()
    }


def _default_floors() -> dict[str, int]:
    return {"legal_regulated": 4, "long_horizon": 3, "coding": 3, "quick_answer": 1}


class ACOConfig(_Strict):
    """The whole configuration. Defaults are the seed's five-tier table and thresholds.

    Example:
        ```python
        cfg = ACOConfig(router_model_path="my_bundle/")
        cfg.routing.max_cost_per_task   # 5.0
        ```
    """

    routing: RoutingSettings = Field(default_factory=RoutingSettings)
    models: dict[str, TierSpec] = Field(default_factory=default_models)
    task_floors: dict[str, int] = Field(default_factory=_default_floors)
    router_model_path: str | None = Field(
        None, description="Directory of a learned-router bundle; None uses the shipped one."
    )
    router: Literal["learned", "rules"] = "learned"
    local_model: LocalModelSettings = Field(default_factory=LocalModelSettings)
    cascade: CascadeSettings = Field(default_factory=CascadeSettings)
    agent: AgentSettings = Field(default_factory=AgentSettings)
    trace_path: str | None = Field(None, description="JSONL file traces are appended to.")
    ledger: LedgerSettings = Field(default_factory=LedgerSettings)
    budgets: BudgetSettings = Field(default_factory=BudgetSettings)

    server: ServerSettings = Field(default_factory=ServerSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    learning: LearningSettings = Field(default_factory=LearningSettings)

    @model_validator(mode="before")
    @classmethod
    def _old_spellings(cls, data: Any) -> Any:
        # Keys that moved to their one home load for a release, warning (config_deprecations).
        return moved_config_keys(data)

    @field_validator("models", mode="before")
    @classmethod
    def _merge_models(cls, value: Any) -> Any:
        # A user's file may name only the tiers it changes (the seed's example gives
        # tier1 and tier4); the others keep their defaults, and a named tier's unnamed
        # fields keep theirs too.
        if not isinstance(value, dict):
            return value
        from aco_langchain.provider_families import same_default_model

        merged: dict[str, Any] = {k: v.model_dump() for k, v in default_models().items()}
        for key, spec in value.items():
            if key not in TIER_KEYS:
                raise ValueError(f"unknown tier {key!r}: tiers are named {', '.join(TIER_KEYS)}")
            if isinstance(spec, TierSpec):
                merged[key] = spec
            elif isinstance(spec, dict):
                default = merged[key]
                # Same model: fill unnamed fields from the default tier. Another model (or
                # provider): the default tier's provider details would be wrong, so start clean.
                same = same_default_model(spec, default)
                merged[key] = {**default, **spec} if same else dict(spec)
            else:
                raise ValueError(f"tier {key!r} must be a mapping of fields")
        return merged

    @field_validator("task_floors")
    @classmethod
    def _check_floors(cls, value: dict[str, int]) -> dict[str, int]:
        for task, tier in value.items():
            if task not in TASK_TYPES:
                raise ValueError(
                    f"floor names unknown task {task!r}: use one of {', '.join(TASK_TYPES)}"
                )
            if tier not in TIER_NUMBERS:
                raise ValueError(f"floor for {task!r} names unknown tier {tier}: use 1 to 5")
        return value

    @model_validator(mode="after")
    def _check_models(self) -> ACOConfig:
        _check_limits(self)
        missing = [k for k in TIER_KEYS if k not in self.models]
        if missing:
            raise ValueError(f"missing tier(s) {', '.join(missing)}: define all of tier1..tier5")
        if self.routing.safety_threshold > self.routing.downgrade_threshold:
            raise ValueError("routing.safety_threshold must not exceed routing.downgrade_threshold")
        ttl, deadline = self.ledger.hold_ttl_s, self.routing.max_latency_per_call_s
        if ttl is not None and ttl < deadline:
            # A hold that expires while its call runs frees budget the call may still spend.
            raise ValueError(
                f"ledger.hold_ttl_s ({ttl:g} s) is shorter than a call's deadline "
                f"routing.max_latency_per_call_s ({deadline:g} s): a hold would expire while "
                f"its call runs and let other calls overspend; set ledger.hold_ttl_s >= "
                f"{deadline:g} or leave it unset"
            )
        return self

    def output_cap(self, number: int) -> int:
        """Tier ``number``'s output cap when a call sets none: its ``max_output_tokens``,
        at most ``routing.max_output_tokens`` (``ACOConfig().output_cap(1)``: 256)."""
        own = self.tier(number).max_output_tokens
        return min(self.routing.max_output_tokens, own or self.routing.max_output_tokens)

    def tier(self, number: int) -> TierSpec:
        """The spec of tier ``number`` (1-5)."""
        # A dict lookup, not a format per call: the routing hot path asks ~25 times a call.
        key = _TIER_KEY.get(number)
        if key is None or isinstance(number, bool):
            raise ConfigError(f"tier {number} does not exist: tiers are 1 to 5")
        return self.models[key]

    def api_key_envs(self) -> list[str]:
        """The env vars holding the tiers' API keys (their values are masked in any output)."""
        return [e for n in TIER_NUMBERS if (e := self.tier(n).api_key_env)]

    def tier_of_model(self, model_id: str) -> int | None:
        """The tier number whose model_id (or provider model) is ``model_id``."""
        for n in TIER_NUMBERS:
            spec = self.tier(n)
            if model_id in (spec.model_id, spec.model):
                return n
        return None

    def floor_for(self, task_type: str | None) -> int:
        """The minimum tier the task type allows (1 when no floor is set)."""
        if task_type is None:
            return 1
        return self.task_floors.get(task_type, 1)


def _check_limits(cfg: ACOConfig) -> None:
    rs = cfg.routing  # each valid alone, impossible together: no call could be held
    if rs.max_output_tokens > rs.max_tokens_per_task:
        raise ValueError(
            f"routing.max_output_tokens ({rs.max_output_tokens}) is more than the run's token "
            f"budget routing.max_tokens_per_task ({rs.max_tokens_per_task}): lower it"
        )


def format_validation_error(err: ValidationError, source: str = "config") -> str:
    """One readable message naming each bad field and what to do about it."""
    lines = [f"{source}: {err.error_count()} problem(s)"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key: remove it or check its spelling"
        elif e["type"] == "missing":
            msg = "required field is missing: add it"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        # Only pydantic's message, never its input_value (it may be a key); masked anyway.
        lines.append(f"  - {loc}: {mask(msg, shapes=False)}")
    return "\n".join(lines)


def config_from_dict(data: dict[str, Any], source: str = "config") -> ACOConfig:
    """Validate a mapping into an ACOConfig, raising ConfigError with a readable message."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping (routing:, models:, ...)")
    try:
        with reading(source):
            return ACOConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, source)) from None


def as_config(value: Any) -> Any:
    """``value`` as an ACOConfig when given as a YAML path or a mapping; anything else as it
    is (for the caller's own validation to report).

    Raises:
        ConfigError: the file or the mapping is not a valid config.
    """
    if isinstance(value, str | Path):
        return load_config(value)
    if isinstance(value, dict):
        return config_from_dict(value)
    return value


def load_config(path: str | os.PathLike[str] | None = None) -> ACOConfig:
    """Load ``config.yaml``; None gives the defaults (or ``$ACO_CONFIG`` when set).

    Args:
        path: The YAML file; None reads ``$ACO_CONFIG``, else gives the defaults.

    Returns:
        The validated config.

    Raises:
        ConfigError: The file is missing, unreadable, not YAML, or a field is wrong (the
            message names the file, the field and the fix).

    Example:
        ```python
        cfg = load_config("config.yaml")
        ```
    """
    if path is None:
        env = os.environ.get("ACO_CONFIG")
        if not env:
            return ACOConfig()
        path = env
    return config_from_dict(read_config_file(path), source=str(Path(path)))


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The YAML mapping of a config file, before validation (``{}`` for an empty file).

    Raises:
        ConfigError: The file is missing, unreadable, not UTF-8, not YAML, or not a mapping.

    Example:
        ```python
        read_config_file("config.yaml")["routing"]   # {'max_cost_per_task': 2.0}
        ```
    """
    import yaml

    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"{p}: is a directory, not a config file (give the path of a YAML file)")
    if not p.is_file():
        raise ConfigError(f"{p}: no such config file (give a path to a YAML file)")
    try:
        text = p.read_bytes().decode("utf-8")
    except OSError as err:
        raise ConfigError(f"{p}: cannot read the config file ({err.strerror})") from err
    except UnicodeDecodeError as err:
        line = p.read_bytes()[: err.start].count(b"\n") + 1
        raise ConfigError(
            f"{p}: line {line}: not UTF-8 text (byte {err.start}): save the file as UTF-8"
        ) from err
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{p}: not valid YAML: {_yaml_problem(err)}") from err
    if data is not None and not isinstance(data, dict):
        raise ConfigError(
            f"{p}: the top level must be a mapping (routing:, models:, ...), "
            f"not a {type(data).__name__}"
        )
    return data or {}


def _yaml_problem(err: Exception) -> str:
    """Where and what, without the offending line (it may hold a key)."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or "syntax error"
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    # The problem text can quote the token it choked on: keep it short and masked.
    from aco_langchain.redact import mask

    return f"{where}{mask(str(problem))[:120]}; fix the YAML syntax there"
