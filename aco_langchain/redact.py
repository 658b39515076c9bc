"""Secrets never leave the process: mask API keys in any text we emit.

What is masked, wherever text leaves the process (error messages, ``aco.failures``, traces,
logs, CLI output):

- the values of the configured keys themselves: every ``api_key_env`` of a config that was
  registered (:func:`register_config`), every value registered with :func:`register_secret`,
  and every environment variable whose name says it is a secret (``*API_KEY*``, ``*TOKEN*``,
  ``*SECRET*``, ``*PASSWORD*``);
- well-known key shapes a provider may echo back (``sk-...``, ``Bearer ...``, ``ghp_...``,
  ``AIza...``, ``xox?-...``) and ``api_key: value`` style pairs.

Example:
    ```python
    from aco_langchain.redact import mask, register_secret

    register_secret("my-private-key-123")
    mask("bad key my-private-key-123")   # 'bad key ***'
    ```
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable
from typing import Any, Protocol


class KeyedConfig(Protocol):
    """What ``register_config`` reads of a config (``ACOConfig`` is one): its key env vars."""

    def api_key_envs(self) -> list[str]: ...


#: Shorter values are not masked by value (they would mask ordinary words).
MIN_SECRET_LEN = 6
MASK = "***"

_SECRET_NAME = re.compile(r"API_?KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
_PATTERNS = (
    re.compile(r"\b(sk-)[A-Za-z0-9_\-]{6,}"),
    re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=\-]+"),
    re.compile(r"\b(gh[pousr]_)[A-Za-z0-9]{10,}"),
    re.compile(r"\b(AIza)[0-9A-Za-z_\-]{10,}"),
    re.compile(r"\b(xox[abprs]-)[A-Za-z0-9\-]{10,}"),
    re.compile(
        r"(?i)((?:api[_-]?key|access[_-]?token|auth[_-]?token|secret|password|authorization)"
        r"[\"']?\s*[:=]\s*[\"']?)(?=[^\s\"',;}]*\d)([^\s\"',;}]{8,})"
    ),
)

_lock = threading.Lock()
_registered: set[str] = set()
_env_names: set[str] = set()


def register_secret(value: str | None) -> None:
    """Mask ``value`` from now on wherever this package emits text.

    Args:
        value: the secret; ``None`` and values shorter than 6 characters are ignored.
    """
    if value and len(value) >= MIN_SECRET_LEN:
        with _lock:
            _registered.add(value)


def register_env(names: Iterable[str | None]) -> None:
    """Mask the values of these environment variables (read each time text is masked)."""
    with _lock:
        _env_names.update(n for n in names if n)


def register_config(config: KeyedConfig) -> None:
    """Mask every ``api_key_env`` value the config names."""
    register_env(config.api_key_envs())


def _secret_values() -> list[str]:
    with _lock:
        values = set(_registered)
        names = set(_env_names)
    for name, value in os.environ.items():
        if (name in names or _SECRET_NAME.search(name)) and len(value) >= MIN_SECRET_LEN:
            values.add(value)
    # Longest first, so a key that contains another is masked whole.
    return sorted(values, key=len, reverse=True)


def mask(text: str, *, shapes: bool = True) -> str:
    """``text`` with every known secret value and key-shaped token replaced by ``***``.

    Args:
        text: any text about to leave the process.
        shapes: also mask key-shaped tokens (``sk-...``, ``api_key: ...``); False masks only
            the known secret values (for our own messages, which name fields like ``api_key``).

    Returns:
        The masked text (unchanged when it holds no secret).

    Example:
        ```python
        mask("Incorrect API key provided: sk-abc123def")   # '... provided: sk-***'
        ```
    """
    if not text:
        return text
    for value in _secret_values():
        if value in text:
            text = text.replace(value, MASK)
    if not shapes:
        return text
    for pattern in _PATTERNS:  # group 1 is the kept prefix ("sk-", "Bearer ", "api_key=")
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


def mask_obj(value: Any) -> Any:
    """A JSON-like value with every string in it masked (dicts, lists and tuples walked)."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {k: mask_obj(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(mask_obj(v) for v in value)
    return value


__all__ = ["mask", "mask_obj", "register_config", "register_env", "register_secret"]
