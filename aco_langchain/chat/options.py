"""Per-call options of :class:`ACORouterChatModel`: their names, where they come from
(invoke kwargs or ``configurable``), and the call's identity (run key, user, API key, tags).

Pure: the kwargs LangChain hands to ``_generate`` become one typed :class:`CallOptions`.

Example:
    ```python
    opts = split_call_options({"force_tier": 3, "aco_run_id": "job-7", "temperature": 0},
                              model_name="aco-router", fixed_run_key=None)
    opts.options, opts.who.run_key, opts.passthrough     # {'force_tier': 3}, 'job-7', {...}
    ```
"""

from __future__ import annotations

import difflib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from aco_langchain.errors import InvalidRequestError
from aco_langchain.routing import RouteConstraints
from aco_langchain.spend.budgets import CallIdentity

#: Per-call options, accepted as invoke kwargs or RunnableConfig ``configurable`` keys.
ACO_OPTIONS = tuple(RouteConstraints.model_fields)
RUN_KEY_OPTION = "aco_run_id"
TRACE_KEY = "aco_trace_id"
#: Who a call is for (budgets per user / API key / tag): kwargs or ``configurable`` keys.
IDENTITY_OPTIONS = ("aco_user", "aco_api_key", "aco_tags")
#: ``aco_new_run=True``: the caller vouches that the run key is new (it just minted it, as
#: ``aco serve`` does for a request without a run id): the run has spent $0, so the spend
#: read before routing is skipped. Budgets stay enforced by the ledger's holds.
NEW_RUN_OPTION = "aco_new_run"
TOOLS_KEY = "aco_tools"
TOOL_CHOICE_KEY = "aco_tool_choice"

_KNOWN_OPTIONS = (*ACO_OPTIONS, RUN_KEY_OPTION, *IDENTITY_OPTIONS, NEW_RUN_OPTION)


@lru_cache(maxsize=256)
def _misspelt_option(key: str) -> str | None:
    """The per-call option ``key`` looks like a misspelling of, else None (cached: the
    same passthrough kwargs repeat on every call)."""
    if key in _KNOWN_OPTIONS or key in (TOOLS_KEY, TOOL_CHOICE_KEY, TRACE_KEY):
        return None
    close = difflib.get_close_matches(key, _KNOWN_OPTIONS, n=1, cutoff=0.8)
    if close:
        return close[0]
    if key.startswith(("force_", "aco_")):
        return ", ".join(_KNOWN_OPTIONS)
    return None


def check_option_names(keys: Iterable[str], where: str = "option") -> None:
    """Reject per-call keys that look like a misspelt aco option (``force_teir``).

    Other keys are the tier's own call options (``temperature``, ``response_format``...)
    and pass through untouched.

    Args:
        keys: the per-call keys.
        where: what they are called in the error (``option``, ``configurable key``).

    Raises:
        InvalidRequestError: naming the key and the option it resembles.
    """
    for key in keys:
        near = _misspelt_option(key)
        if near is not None:
            raise InvalidRequestError(
                f"unknown {where} {key!r}: did you mean {near}? "
                f"(aco options: {', '.join(_KNOWN_OPTIONS)})"
            )


def merge_configurable(configurable: dict[str, Any], kwargs: dict[str, Any]) -> None:
    """Copy the aco options of ``configurable`` into ``kwargs`` (kwargs win).

    Raises:
        InvalidRequestError: a misspelt option in ``configurable``.
    """
    check_option_names(configurable, "configurable key")
    for key in _KNOWN_OPTIONS:
        if key in configurable and key not in kwargs:
            kwargs[key] = configurable[key]


@dataclass(frozen=True)
class CallOptions:
    """A call's kwargs, sorted: routing options, identity, tools, and the tier's own kwargs."""

    options: dict[str, Any]
    """``RouteConstraints`` fields (and ``max_tokens``) for the route request."""
    who: CallIdentity
    tools: list[dict[str, Any]] | None
    tool_choice: Any
    passthrough: dict[str, Any]
    """Everything else: the tier's own call options (``temperature``, ``response_format``)."""
    model_override: str | None
    """``model=`` naming a concrete model or tier ``model_id`` (resolved by the planner)."""
    new_run: bool = False
    """The caller minted the run key (``aco_new_run``): its spend is $0, not read."""

    @property
    def run_key(self) -> str:
        return self.who.run_key


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def split_call_options(
    kwargs: dict[str, Any],
    *,
    model_name: str,
    fixed_run_key: str | None,
    max_tokens: int | None = None,
    temperature: float | None = None,
) -> CallOptions:
    """Sort a call's kwargs into :class:`CallOptions`; pure.

    Args:
        kwargs: what LangChain passed to ``_generate`` (not modified).
        model_name: the router model's own name (``model=`` equal to it is no override).
        fixed_run_key: the model's ``run_key`` field (used when the call names none).
        max_tokens: the model's default output cap.
        temperature: the model's default temperature (passed through to the tier).

    Returns:
        The sorted options.

    Raises:
        InvalidRequestError: a misspelt option name.
    """
    kw = dict(kwargs)
    options = {k: kw.pop(k) for k in ACO_OPTIONS if k in kw}
    run_key = str(kw.pop(RUN_KEY_OPTION, None) or fixed_run_key or f"aco-{uuid.uuid4().hex[:12]}")
    tags = kw.pop("aco_tags", None) or ()
    who = CallIdentity(
        run_key=run_key,
        user=_opt_str(kw.pop("aco_user", None)),
        api_key=_opt_str(kw.pop("aco_api_key", None)),
        tags=tuple(str(t) for t in ([tags] if isinstance(tags, str) else tags)) if tags else (),
        trace_id=_opt_str(kw.pop(TRACE_KEY, None)),
    )
    new_run = kw.pop(NEW_RUN_OPTION, None) is True
    tools = kw.pop(TOOLS_KEY, None)
    tool_choice = kw.pop(TOOL_CHOICE_KEY, None)
    override = kw.pop("model", None)
    if override == model_name or "force_model" in options:
        override = None
    cap = kw.pop("max_tokens", max_tokens)
    if cap is not None:
        options["max_tokens"] = cap
    check_option_names(kw)
    if temperature is not None:
        kw.setdefault("temperature", temperature)
    return CallOptions(
        options=options,
        who=who,
        tools=tools,
        tool_choice=tool_choice,
        passthrough=kw,
        model_override=_opt_str(override) if override else None,
        new_run=new_run,
    )


__all__ = [
    "ACO_OPTIONS",
    "IDENTITY_OPTIONS",
    "NEW_RUN_OPTION",
    "RUN_KEY_OPTION",
    "TOOLS_KEY",
    "TOOL_CHOICE_KEY",
    "TRACE_KEY",
    "CallOptions",
    "check_option_names",
    "merge_configurable",
    "split_call_options",
]
