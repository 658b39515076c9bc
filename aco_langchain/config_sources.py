"""Where each effective setting comes from: the built-in default, the config file, or the env.

``aco config show --sources`` prints these: one line per setting, its effective value and its
source, so "which ledger / cache dir / price is in force, and why" has one answer.

Example:
    ```python
    from aco_langchain.config_sources import setting_sources
    for s in setting_sources("config.yaml"):
        print(s.key, s.value, s.source)   # routing.max_cost_per_task 2.0 file config.yaml
    ```
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from aco_langchain.config import ACOConfig, config_from_dict, read_config_file
from aco_langchain.config_deprecations import move_file_keys
from aco_langchain.ledger_url import ENV_VAR as LEDGER_ENV
from aco_langchain.ledger_url import default_ledger_url

#: Env vars that override a setting, and the setting they override.
ENV_OVERRIDES = {"ledger.url": LEDGER_ENV, "local_model.cache_dir": "ACO_CACHE_DIR"}
#: Env vars that add plain bearer keys to ``server.api_keys`` (their values never printed).
SERVER_KEYS_ENV = "ACO_SERVER_API_KEYS"


@dataclass(frozen=True)
class SettingSource:
    """One effective setting: its dotted key, its value and where the value came from.

    ``source`` is ``default``, ``file <path>`` or ``env <VAR>``; a value the file gives under
    an old spelling says so: ``file <path> (deprecated: server.request_timeout_s)``.
    """

    key: str
    value: Any
    source: str


def setting_sources(
    path: str | None = None, env: Mapping[str, str] | None = None
) -> list[SettingSource]:
    """Every effective setting of the config at ``path`` (else ``$ACO_CONFIG``, else the
    defaults), with its source.

    Args:
        path: The config file; None reads ``$ACO_CONFIG`` from ``env``.
        env: The environment (default ``os.environ``).

    Returns:
        One entry per leaf setting (lists are one value), in the config's field order.

    Raises:
        ConfigError: the file is missing, not YAML, or a field is wrong.

    Example:
        ```python
        {s.key: s.source for s in setting_sources(env={"ACO_LEDGER_URL": "memory://"})}[
            "ledger.url"]   # 'env ACO_LEDGER_URL'
        ```
    """
    env = os.environ if env is None else env
    file = path or env.get("ACO_CONFIG") or None
    data = read_config_file(file) if file else {}
    cfg: ACOConfig = config_from_dict(data, source=file) if file else ACOConfig()
    moved_data, moved = move_file_keys(data)
    old_spelling = {m.new: m.old for m in moved}
    out: list[SettingSource] = []
    for key, value in _leaves(cfg.model_dump(mode="json")):
        var = ENV_OVERRIDES.get(key)
        if key == "ledger.url" and env.get(LEDGER_ENV):
            out.append(SettingSource(key, env[LEDGER_ENV], f"env {LEDGER_ENV}"))
        elif key in old_spelling:
            out.append(SettingSource(key, value, f"file {file} (deprecated: {old_spelling[key]})"))
        elif _given(moved_data, key):
            out.append(SettingSource(key, value, f"file {file}"))
        elif var is not None and env.get(var):
            out.append(SettingSource(key, env[var], f"env {var}"))
        elif key == "ledger.url":
            out.append(SettingSource(key, default_ledger_url(), "default"))
        else:
            out.append(SettingSource(key, value, "default"))
    plain = [k for k in env.get(SERVER_KEYS_ENV, "").split(",") if k.strip()]
    if plain:
        what = f"{len(plain)} plain key(s), not shown"
        out.append(SettingSource("server.api_keys (env)", what, f"env {SERVER_KEYS_ENV}"))
    return out


def _leaves(data: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for name, value in data.items():
        key = f"{prefix}{name}"
        if isinstance(value, Mapping) and value:
            yield from _leaves(value, key + ".")
        else:
            yield key, value


def _given(data: Mapping[str, Any], key: str) -> bool:
    """Did the file set ``key`` (or a whole mapping or list that holds it)?"""
    node: Any = data
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


__all__ = ["ENV_OVERRIDES", "SettingSource", "setting_sources"]
