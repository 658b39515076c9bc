"""One home per setting: the old spellings, where each one moved, and the code that moves them.

Every setting lives in one place in the config (``routing.*``, ``cascade.*``, ``ledger.*``,
``cache.*``, ``budgets.*``). Spellings that used to set the same thing elsewhere still load for
one release: the value moves to its home, a :class:`SettingMovedWarning` (a
``DeprecationWarning``) names the new spelling, and giving both with different values is a
:class:`ConfigError` naming both.

- ``FILE_KEYS``: config keys (a file, or a dict given to ``ACOConfig``); moved by the
  ``ACOConfig`` validator (:func:`move_file_keys`).
- ``MODEL_KWARGS``: ``ACORouterChatModel(...)`` arguments that were settings; the model's
  config is a copy with the value moved in (:func:`move_model_kwargs`), so
  ``llm.config.cascade.enabled`` is what every part reads. A ``SpendLedger`` or a
  ``BaseCache`` object passed to the model is not a setting and stays.
- ``STANDARD_KWARGS``: LangChain's standard ``timeout`` and ``max_retries`` arguments, which
  every chat model takes: not deprecated, but no field either; they set their home in the
  config the same way (``llm.config.routing.max_retries`` is the one value read).

Example:
    ```python
    from aco_langchain.config_deprecations import move_file_keys
    data, moved = move_file_keys({"server": {"request_timeout_s": 5}})
    data["routing"]                 # {'max_latency_per_call_s': 5}
    moved[0].old, moved[0].new      # ('server.request_timeout_s', 'routing.max_latency_per_call_s')
    ```
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from aco_langchain.errors import ConfigError, SettingMovedWarning

#: Config keys that moved: old dotted key -> the key that holds the setting now.
FILE_KEYS: dict[str, str] = {
    "server.request_timeout_s": "routing.max_latency_per_call_s",
    "server.api_keys[].budget_usd": "budgets.keys.<name>",
}

#: LangChain's standard chat-model arguments that are settings here (every LangChain chat
#: model takes them; ``langchain_tests`` passes them): accepted without a warning, their value
#: written to its one home in the model's config (None: unset).
STANDARD_KWARGS: dict[str, str] = {
    "max_retries": "routing.max_retries",
    "timeout": "routing.max_latency_per_call_s",
}

#: Deprecated ``ACORouterChatModel`` arguments that were settings -> their home in the config.
#: ``ledger`` and ``cache`` only as URL strings (an object passed in is not a setting).
MODEL_KWARGS: dict[str, str] = {
    "retry_base_delay_s": "routing.retry_base_delay_s",
    "cooldown_after": "routing.cooldown_after",
    "cooldown_s": "routing.cooldown_s",
    "cascade": "cascade.enabled",
    "ledger": "ledger.url",
    "cache": "cache.url",
}

_URL_KWARGS = ("ledger", "cache")  # their values may hold a password: never printed
_REMOVED = "is deprecated and will be removed in the next release"
_SOURCE: ContextVar[str] = ContextVar("aco_config_source", default="config")


@dataclass(frozen=True)
class Moved:
    """One old spelling found in a config, and the key that now holds its value."""

    old: str
    new: str


def _block(data: dict[str, Any], name: str) -> dict[str, Any]:
    """A mutable copy of the block ``name`` of ``data`` (a mapping, or a settings object's
    explicitly set fields)."""
    value = data.get(name)
    if isinstance(value, dict):
        return dict(value)
    dump = getattr(value, "model_dump", None)
    return dict(dump(exclude_unset=True)) if callable(dump) else {}


def _disagree(old: str, old_value: Any, new: str, new_value: Any) -> ConfigError:
    return ConfigError(
        f"{old} ({old_value!r}) and {new} ({new_value!r}) are both set and differ: "
        f"{old} {_REMOVED}; keep only {new}"
    )


def move_file_keys(data: Any) -> tuple[Any, list[Moved]]:
    """Move old config keys (``FILE_KEYS``) to their homes; pure (no warning).

    Args:
        data: the config mapping before validation (not modified).

    Returns:
        The mapping with each old key's value at its home, and what moved.

    Raises:
        ConfigError: an old key and its home are both set, to different values.

    Example:
        ```python
        move_file_keys({"server": {"api_keys": [{"name": "a", "sha256": "..",
                                                 "budget_usd": 2.0}]}})[0]["budgets"]
        # {'keys': {'a': 2.0}}
        ```
    """
    if not isinstance(data, dict) or not isinstance(data.get("server"), dict):
        return data, []
    out, server, moved = dict(data), dict(data["server"]), []
    if "request_timeout_s" in server:
        old, new = "server.request_timeout_s", "routing.max_latency_per_call_s"
        value = server.pop("request_timeout_s")
        if value is not None:
            routing = _block(out, "routing")
            given = routing.get("max_latency_per_call_s")
            if given is not None and given != value:
                raise _disagree(old, value, new, given)
            out["routing"] = {**routing, "max_latency_per_call_s": value}
        moved.append(Moved(old, new))
    if isinstance(server.get("api_keys"), list):
        entries = []
        for entry in server["api_keys"]:
            if isinstance(entry, dict) and "budget_usd" in entry:
                entry = dict(entry)
                value, name = entry.pop("budget_usd"), entry.get("name")
                if value is not None and isinstance(name, str):
                    old, new = f"server.api_keys[{name}].budget_usd", f"budgets.keys.{name}"
                    budgets = _block(out, "budgets")
                    keys = dict(budgets.get("keys") or {})
                    if name in keys and keys[name] != value:
                        raise _disagree(old, value, new, keys[name])
                    out["budgets"] = {**budgets, "keys": {**keys, name: value}}
                    moved.append(Moved(old, new))
            entries.append(entry)
        server["api_keys"] = entries
    out["server"] = server
    return out, moved


def moved_config_keys(data: Any) -> Any:
    """:func:`move_file_keys`, warning once per old key (``ACOConfig``'s validator).

    Raises:
        ConfigError: an old key and its home disagree.
    """
    out, moved = move_file_keys(data)
    for m in moved:
        warn_moved(
            f"{_SOURCE.get()}: {m.old} {_REMOVED}; set {m.new} instead (it now holds the value)"
        )
    return out


@contextmanager
def reading(source: str) -> Iterator[None]:
    """Name ``source`` (a file) in the warnings of configs validated inside the block."""
    token = _SOURCE.set(source)
    try:
        yield
    finally:
        _SOURCE.reset(token)


def _moves_setting(name: str, value: Any) -> bool:
    if name in _URL_KWARGS:
        return isinstance(value, str)
    return name in MODEL_KWARGS or value is not None  # standard ones: None is "unset"


def move_model_kwargs(kwargs: dict[str, Any], owner: str = "ACORouterChatModel") -> dict[str, Any]:
    """Move a model's setting arguments (``STANDARD_KWARGS``, and the deprecated
    ``MODEL_KWARGS``, which warn) into its config.

    The returned ``config`` is a copy of the given one (a path or dict is loaded first) with
    each value at its home; ``ledger`` keeps a URL string too, so it still wins over
    ``$ACO_LEDGER_URL`` as the argument did.

    Args:
        kwargs: the constructor's keyword arguments (not modified).
        owner: the class named in messages.

    Returns:
        The arguments without the moved ones (unchanged when none is given).

    Raises:
        ConfigError: an argument and its config home are both set to different values, or
            the value is not valid there.

    Example:
        ```python
        move_model_kwargs({"max_retries": 1})["config"].routing.max_retries   # 1
        move_model_kwargs({"cascade": True})["config"].cascade.enabled     # True (warns)
        ```
    """
    homes = {**STANDARD_KWARGS, **MODEL_KWARGS}
    found = [k for k in homes if k in kwargs and _moves_setting(k, kwargs[k])]
    if not found:
        return kwargs
    from aco_langchain.config import ACOConfig, as_config

    out = dict(kwargs)
    cfg = ACOConfig() if out.get("config") is None else as_config(out["config"])
    if not isinstance(cfg, ACOConfig):
        return out  # the config field's own validation reports it
    for name in found:
        value = out[name] if name == "ledger" else out.pop(name)
        home = homes[name]
        if name in MODEL_KWARGS:
            block, field = home.split(".")
            shown = "..." if name in _URL_KWARGS else repr(value)
            hint = f"ACOConfig({block}={{{field!r}: {shown}}})"
            if name == "ledger":
                hint += ", or pass ledger=open_ledger(url) (it wins over $ACO_LEDGER_URL)"
            warn_moved(f"{owner}({name}=...) {_REMOVED}; set the config's {home} instead: {hint}")
        if value is not None:
            cfg = _with_setting(cfg, home, value, f"{owner}({name}=...)", name in _URL_KWARGS)
    out["config"] = cfg
    return out


def _with_setting(cfg: Any, home: str, value: Any, given_as: str, secret: bool) -> Any:
    """A copy of ``cfg`` with ``home`` set to ``value`` (validated as in a file).

    Raises:
        ConfigError: the config sets ``home`` to another value, or ``value`` is not valid.
    """
    from pydantic import ValidationError

    from aco_langchain.config import format_validation_error

    block_name, field = home.split(".")
    block = getattr(cfg, block_name)
    if field in block.model_fields_set and getattr(block, field) != value:
        if secret:
            raise ConfigError(
                f"{given_as} and the config's {home} are both set and differ: keep only {home}"
            )
        raise ConfigError(
            f"{given_as} ({value!r}) and the config's {home} ({getattr(block, field)!r}) are "
            f"both set and differ: give the setting once ({home})"
        )
    try:
        block = block.model_copy()
        setattr(block, field, value)  # validated, as in a file
        cfg = cfg.model_copy()
        setattr(cfg, block_name, block)  # the config's cross-field checks
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, f"{given_as} as {home}")) from None
    return cfg


def warn_moved(message: str) -> None:
    """Warn (:class:`SettingMovedWarning`) at the first caller outside the package, so the
    warning points at the user's line."""
    warnings.warn(message, SettingMovedWarning, stacklevel=_user_stacklevel())


_PACKAGE = os.path.dirname(__file__) + os.sep
_INTERNAL = (f"{os.sep}pydantic{os.sep}", f"{os.sep}langchain_core{os.sep}")


def _user_stacklevel() -> int:
    """``stacklevel`` (for :func:`warn_moved`) of the first frame outside this package,
    pydantic and langchain_core; the outermost frame when all are inside."""
    frame, level = sys._getframe(2), 2
    while frame.f_back is not None:
        name = frame.f_code.co_filename
        if not (name.startswith(_PACKAGE) or any(part in name for part in _INTERNAL)):
            break
        frame, level = frame.f_back, level + 1
    return level


__all__ = [
    "FILE_KEYS",
    "MODEL_KWARGS",
    "STANDARD_KWARGS",
    "Moved",
    "move_file_keys",
    "move_model_kwargs",
    "moved_config_keys",
    "reading",
    "warn_moved",
]
