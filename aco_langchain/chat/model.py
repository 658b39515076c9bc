"""ACORouterChatModel: one BaseChatModel that routes each call to the cheapest capable tier.

Usage::

    from aco_langchain import ACORouterChatModel
    llm = ACORouterChatModel()                                  # seed defaults + shipped router
    msg = llm.invoke("What is 2+2?")
    msg.response_metadata["aco"]   # {"tier": 1, "model_id": "tiny-local-3b", "cost_usd": 0.0, ...}
    llm.invoke("Fix the auth bug", force_tier=4, max_cost_usd=0.05)   # per-call options

What happens on each call (sync and async share every decision; only the I/O differs):

1. The messages become a ``RouteRequest``; the router assesses it and the shared policy
   (``router/policy.py``) decides the tier under floors, per-call constraints, the run's
   budget and tier availability.
2. With ``cascade=True`` the cheap tier answers first with logprobs; a low confidence
   escalates to a stronger tier (``cascade.py``). Streams are buffered until the decision
   unless ``config.cascade.buffer_stream`` is false (then streams skip the cascade).
3. The tier is called through its own ``_generate``/``_stream`` with this run's callback
   manager, so usage is counted once and the tier's ``model_name``, ``logprobs`` and
   ``token_usage`` survive. Provider faults are retried and fall back (``faults.py``).
4. Cost comes from the real ``usage_metadata`` at the tier's price and goes to the ledger;
   ``response_metadata["aco"]`` says what was done and what it cost.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from operator import itemgetter
from pathlib import Path
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.output_parsers.openai_tools import (
    JsonOutputKeyToolsParser,
    PydanticToolsParser,
)
from langchain_core.runnables import Runnable, RunnableConfig, RunnableMap, RunnablePassthrough
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass
from pydantic import ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from aco_langchain.chat.execute import ExecuteMixin, FallbackRun
from aco_langchain.chat.metadata import MetadataMixin
from aco_langchain.chat.plan import (
    _RUN_KEY_OPTION,
    _TOOL_CHOICE_KEY,
    _TOOLS_KEY,
    _TRACE_KEY,
    ACO_OPTIONS,
    IDENTITY_OPTIONS,
    CallPlan,
    PlanningMixin,
    Runtime,
    build_route_request,
)
from aco_langchain.config import (
    ACOConfig,
    config_from_dict,
    format_validation_error,
    load_config,
)
from aco_langchain.errors import ConfigError
from aco_langchain.providers.faults import (
    TierHealth,
)
from aco_langchain.providers.tiers import TierRegistry
from aco_langchain.routing import get_router as _default_router
from aco_langchain.spend.ledger import SpendLedger, open_ledger
from aco_langchain.spend.outcomes import Outcome, OutcomeStore, outcome_store_for


class ACORouterChatModel(PlanningMixin, MetadataMixin, ExecuteMixin, BaseChatModel):
    """Routes every call to the cheapest capable tier of five; drop it in wherever an llm goes.

    Example:
        ```python
        llm = ACORouterChatModel(config="config.yaml")
        llm = ACORouterChatModel(tier_models={1: local_llm, 4: ChatOpenAI(model="gpt-4.1")})
        llm.bind_tools([search]).invoke("Find the release notes")
        llm.invoke("hi", config={"configurable": {"max_cost_usd": 0.01}})
        llm = ACORouterChatModel(cache="sqlite:///aco-cache.db")   # repeats: no tier call, $0
        ```
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True)

    config: ACOConfig = Field(default_factory=ACOConfig)
    """The tier table, thresholds and budgets (an ACOConfig, a dict, or a YAML path)."""
    tier_models: dict[int, BaseChatModel] = Field(default_factory=dict)
    """Ready-made chat models per tier number; they win over the config's providers."""
    router: Any = None
    """A ``Router``; None uses the config's (the shipped learned router by default)."""
    cascade: bool | None = None
    """Ask the cheap tier first and escalate on low confidence; None follows the config."""
    ledger: Any = None
    """Where budgets are held and spend recorded: a ``SpendLedger`` or a URL (``memory://``,
    ``sqlite:///path``, ``postgresql://...``). None: ``$ACO_LEDGER_URL``, else the config's
    ``ledger.url``, else the SQLite file under the user data dir
    (``~/.local/share/aco-langchain/ledger.db``)."""
    run_key: str | None = None
    """Budget key for every call of this instance; None: each call's own run key
    (``aco_run_id``, ``thread_id``, or the root run of the LangChain call tree)."""
    model_name: str = Field(default="aco-router", alias="model")
    temperature: float | None = None
    max_tokens: int | None = Field(default=None, alias="max_tokens")
    stop: list[str] | None = Field(default=None, alias="stop_sequences")
    timeout: float | None = None
    max_retries: int | None = None
    """Retries per tier; None uses ``config.routing.max_retries``."""
    retry_base_delay_s: float = 0.5
    streaming: bool = False
    cooldown_after: int = 2
    cooldown_s: float = 30.0

    # One plain holder: pydantic private-attribute access costs ~1 us each on the hot path.
    _rt: Runtime = PrivateAttr()
    _outcomes: Any = PrivateAttr(default=None)

    def __init__(self, **kwargs: Any) -> None:
        """Build the router model; every bad argument is one :class:`ConfigError`.

        Raises:
            ConfigError: a bad ``config`` (dict, path or object) or another bad field; the
                message names each field and the fix, and never repeats input values.
        """
        try:
            super().__init__(**kwargs)
        except ValidationError as err:
            # from None: pydantic's error repeats input values (a config dict may hold keys).
            raise ConfigError(format_validation_error(err, "ACORouterChatModel")) from None

    @field_validator("config", mode="before")
    @classmethod
    def _coerce_config(cls, value: Any) -> Any:
        if isinstance(value, str | Path):
            return load_config(value)
        if isinstance(value, dict):
            return config_from_dict(value)
        return value

    @field_validator("cache", mode="before")
    @classmethod
    def _coerce_cache(cls, value: Any) -> Any:
        if isinstance(value, str):
            from aco_langchain.spend.cache import cache_from_url

            return cache_from_url(value)
        return value

    def model_post_init(self, context: Any) -> None:
        super().model_post_init(context)
        router = self.router if self.router is not None else _default_router(self.config)
        self._rt = Runtime(
            registry=TierRegistry(self.config, self.tier_models),
            router=router,
            ledger=_ledger(self.ledger, self.config),
            health=TierHealth(cooldown_after=self.cooldown_after, cooldown_s=self.cooldown_s),
            identifying={
                "model_name": self.model_name,
                "tiers": {n: self.config.tier(n).model_id for n in range(1, 6)},
                "router": getattr(router, "name", type(router).__name__),
                "cascade": self._cascade_enabled,
            },
        )

    # -- LangChain plumbing --------------------------------------------------------------

    @property
    def _llm_type(self) -> str:
        return "aco-router"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return self._rt.identifying

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider="aco",
            ls_model_name=kwargs.get("model") or self.model_name,
            ls_model_type="chat",
        )
        if (t := kwargs.get("temperature", self.temperature)) is not None:
            params["ls_temperature"] = t
        if (mt := kwargs.get("max_tokens", self.max_tokens)) is not None:
            params["ls_max_tokens"] = mt
        if stop or self.stop:
            params["ls_stop"] = stop or self.stop
        return params

    def _get_llm_string(self, stop: list[str] | None = None, **kwargs: Any) -> str:
        # The response cache's key: run, trace, user and API key say who pays, not what is
        # asked, so two runs asking the same thing share an entry; sampling settings do
        # change the answer.
        for key in (_RUN_KEY_OPTION, _TRACE_KEY, *IDENTITY_OPTIONS):
            kwargs.pop(key, None)
        for key in ("temperature", "max_tokens"):
            if getattr(self, key) is not None:
                kwargs.setdefault(key, getattr(self, key))
        return super()._get_llm_string(stop=stop or self.stop, **kwargs)

    @property
    def registry(self) -> TierRegistry:
        """The tiers of this model (their chat models are built on first use)."""
        return self._rt.registry

    @property
    def spend_ledger(self) -> SpendLedger:
        return self._rt.ledger

    def spent(self, run_key: str | None = None) -> float:
        """USD settled in the ledger by ``run_key`` (default: ``self.run_key``, else the run
        of this instance's latest call; 0.0 before any call)."""
        key = run_key or self.run_key or self._rt.last_run
        return self._rt.ledger.spent(key) if key else 0.0

    def reset_budget(self, run_key: str | None = None) -> None:
        """Start the budget of ``run_key`` (default as in :meth:`spent`) from zero; its spend
        rows are removed from the ledger too."""
        key = run_key or self.run_key or self._rt.last_run
        if key:
            self._rt.ledger.reset(key)

    @property
    def outcomes(self) -> OutcomeStore:
        """Observed run outcomes, in this model's ledger database (``spend/outcomes.py``)."""
        if self._outcomes is None:
            self._outcomes = outcome_store_for(self.ledger, self._rt.ledger, self.config)
        return self._outcomes

    def record_outcome(
        self,
        run_id: str | None = None,
        *,
        success: bool,
        score: float | None = None,
        source: str = "api",
    ) -> Outcome:
        """Report whether a run succeeded: until then its ``task_success`` is unknown.

        Args:
            run_id: the run (``aco_run_id``); default as in :meth:`spent`.
            success: did the run do what was asked.
            score: an optional grade in [0, 1].
            source: who observed it (``api``, ``verifier``, ...).

        Returns:
            The stored outcome.

        Raises:
            ValueError: no run to report on, or a score outside [0, 1].

        Example:
            ```python
            llm.invoke("Fix the bug", aco_run_id="t-42")
            llm.record_outcome("t-42", success=True, score=0.8)
            ```
        """
        key = run_id or self.run_key or self._rt.last_run
        return self.outcomes.record(key or "", success=success, score=score, source=source)

    async def arecord_outcome(
        self,
        run_id: str | None = None,
        *,
        success: bool,
        score: float | None = None,
        source: str = "api",
    ) -> Outcome:
        """Async :meth:`record_outcome` (native async I/O)."""
        key = run_id or self.run_key or self._rt.last_run
        return await self.outcomes.arecord(key or "", success=success, score=score, source=source)

    @property
    def _cascade_enabled(self) -> bool:
        return self.config.cascade.enabled if self.cascade is None else self.cascade

    # -- per-call options from RunnableConfig -----------------------------------------------

    def invoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        config = self._options_from_config(config, kwargs)
        return super().invoke(input, config, stop=stop, **kwargs)

    async def ainvoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        config = self._options_from_config(config, kwargs)
        return await super().ainvoke(input, config, stop=stop, **kwargs)

    def stream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Iterator[AIMessageChunk]:
        config = self._options_from_config(config, kwargs)
        yield from super().stream(input, config, stop=stop, **kwargs)

    async def astream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[AIMessageChunk]:
        config = self._options_from_config(config, kwargs)
        async for chunk in super().astream(input, config, stop=stop, **kwargs):
            yield chunk

    # -- decisions (pure, shared by every I/O path) -----------------------------------------

    # -- sync I/O -----------------------------------------------------------------------

    # -- async I/O ----------------------------------------------------------------------

    # -- tools and structured output ----------------------------------------------------

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind provider-neutral tools; each call binds them to the tier it routes to.

        Tiers that cannot call tools are skipped for tool-bound calls.

        Usage::

            llm.bind_tools([get_weather], tool_choice="any").invoke("Weather in Paris?")
        """
        formatted = [convert_to_openai_tool(t, strict=kwargs.pop("strict", None)) for t in tools]
        if tool_choice is True:
            tool_choice = "any"
        return self.bind(**{_TOOLS_KEY: formatted, _TOOL_CHOICE_KEY: tool_choice}, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        include_raw: bool = False,
        method: Literal["function_calling", "json_schema", "json_mode"] = "function_calling",
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | Any]:
        """Structured output through the routed tier (tool calling, JSON schema or JSON mode).

        Usage::

            llm.with_structured_output(Answer).invoke("What is 2+2?")   # Answer(value=4)
        """
        if kwargs:
            raise ValueError(f"unsupported arguments {sorted(kwargs)}: use method= and strict=")
        is_model = isinstance(schema, type) and is_basemodel_subclass(schema)
        tool = convert_to_openai_tool(schema, strict=strict)
        name = tool["function"]["name"]
        llm: Runnable[Any, Any]
        parser: Runnable[Any, Any]
        if method == "function_calling":
            llm = self.bind_tools([schema], tool_choice=name, strict=strict)
            parser = (
                PydanticToolsParser(tools=[schema], first_tool_only=True)  # type: ignore[list-item]
                if is_model
                else JsonOutputKeyToolsParser(key_name=name, first_tool_only=True)
            )
        elif method == "json_schema":
            fmt: dict[str, Any] = {
                "type": "json_schema",
                "json_schema": {
                    "name": name,
                    "schema": tool["function"]["parameters"],
                    **({"strict": strict} if strict is not None else {}),
                },
            }
            llm = self.bind(response_format=fmt)
            parser = (
                PydanticOutputParser(pydantic_object=schema) if is_model else JsonOutputParser()
            )  # type: ignore[arg-type]
        elif method == "json_mode":
            llm = self.bind(response_format={"type": "json_object"})
            parser = (
                PydanticOutputParser(pydantic_object=schema) if is_model else JsonOutputParser()
            )  # type: ignore[arg-type]
        else:
            raise ValueError(
                f"method={method!r} is not supported: use function_calling, json_schema "
                "or json_mode"
            )
        if not include_raw:
            return llm | parser
        parser_with_fallback = RunnablePassthrough.assign(
            parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
        ).with_fallbacks(
            [RunnablePassthrough.assign(parsed=lambda _: None)], exception_key="parsing_error"
        )
        return RunnableMap(raw=llm) | parser_with_fallback


def _ledger(value: Any, config: ACOConfig) -> SpendLedger:
    """The model's ledger from its ``ledger`` field (an instance, a URL, or None)."""
    if value is None or isinstance(value, str):
        return open_ledger(value, config)
    if not isinstance(value, SpendLedger):
        from aco_langchain.errors import LedgerError

        raise LedgerError(
            f"ledger={type(value).__name__} is not a SpendLedger (hold/settle/release/...): "
            "pass a URL (sqlite:///path, postgresql://...) or a ledger from open_ledger()"
        )
    return value


__all__ = ["ACO_OPTIONS", "ACORouterChatModel", "CallPlan", "FallbackRun", "build_route_request"]
