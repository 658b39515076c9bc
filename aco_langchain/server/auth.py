"""Bearer keys of ``aco serve``: stored hashed, checked per request, each with a budget.

Keys come from config ``server.api_keys`` (entries ``{name, sha256, admin}``: the SHA-256
of the key, never the key; a key's budget is ``budgets.keys.<name>``) and from env
``ACO_SERVER_API_KEYS`` (comma-separated plain keys, hashed in memory on start; named
``env-1``, ``env-2``...). A request without a valid ``Authorization: Bearer <key>`` gets a
401 in OpenAI's error format.

With no key configured the server answers only loopback clients (and the CLI binds only to
a loopback address) unless ``--allow-unauthenticated`` / ``server.allow_unauthenticated``.

Example:
    ```python
    ring = KeyRing.from_config(cfg.server)
    ring.check("Bearer sk-team-a", client_host="10.0.0.7")   # Principal(name='team-a', ...)
    ```
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass

from aco_langchain.config import ServerSettings
from aco_langchain.server.errors import APIError

ENV_KEYS = "ACO_SERVER_API_KEYS"


def hash_key(key: str) -> str:
    """The hex SHA-256 of a key (what ``server.api_keys[].sha256`` stores)."""
    return hashlib.sha256(key.encode()).hexdigest()


def is_loopback(host: str | None) -> bool:
    """Is ``host`` a loopback address (127.0.0.0/8, ::1, localhost)?"""
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key's name (its non-secret id; its budget is ``budgets.keys.<name>``)
    and whether it is an admin.

    A keyed caller is a tenant: the run keys and users it sends are namespaced by its name
    (:meth:`scoped`) and it reads only its own spend. An admin key and the anonymous caller
    of a keyless server (the only tenant there) see every tenant's figures.
    """

    name: str
    admin: bool = False
    tenant: bool = True

    @property
    def sees_all(self) -> bool:
        """May this caller read every tenant's spend, budgets and runs?"""
        return self.admin or not self.tenant

    def scoped(self, value: str) -> str:
        """``value`` (a run key or user sent by this caller) in this caller's namespace:
        ``<key name>/<value>``, so no other key can name (spend or read) it.

        Example:
            ```python
            Principal("team-a").scoped("run-1")    # 'team-a/run-1'
            ```
        """
        return f"{self.name}/{value}" if self.tenant else value


ANONYMOUS = Principal(name="anonymous", tenant=False)


def host_name(host: str) -> str:
    """The name part of a ``Host`` header (``127.0.0.1:8000`` -> ``127.0.0.1``,
    ``[::1]:8000`` -> ``::1``)."""
    host = host.strip()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    if host.count(":") == 1:
        return host.partition(":")[0]
    return host


def check_host(host: str | None) -> None:
    """Refuse a keyless request whose ``Host`` is not a loopback name (DNS rebinding: a web
    page on ``evil.example`` resolving to 127.0.0.1 reaches the server, but its requests say
    ``Host: evil.example``).

    Raises:
        APIError: 403 naming the host and the fix.
    """
    if host is not None and is_loopback(host_name(host)):
        return
    raise APIError(
        403,
        f"this server has no API keys and answers only requests to a loopback host, not "
        f"Host {(host or '')[:100]!r}: use http://127.0.0.1:<port>, or configure "
        f"server.api_keys or {ENV_KEYS}",
        type="invalid_request_error",
        code="host_not_allowed",
    )


def _unauthorized(message: str) -> APIError:
    return APIError(
        401,
        message,
        type="invalid_request_error",
        code="invalid_api_key",
        headers={"www-authenticate": "Bearer"},
    )


class KeyRing:
    """The server's keys by hash.

    Args:
        keys: ``{sha256 hex: Principal}``.
        allow_unauthenticated: serve non-loopback clients when no key is configured.
    """

    def __init__(
        self, keys: Mapping[str, Principal], *, allow_unauthenticated: bool = False
    ) -> None:
        self._keys = dict(keys)
        self.allow_unauthenticated = allow_unauthenticated

    @classmethod
    def from_config(
        cls,
        settings: ServerSettings,
        *,
        env: Mapping[str, str] | None = None,
        allow_unauthenticated: bool | None = None,
    ) -> KeyRing:
        """Keys from ``server.api_keys`` plus ``ACO_SERVER_API_KEYS``.

        Args:
            settings: the config's ``server:`` block.
            env: the environment (default ``os.environ``).
            allow_unauthenticated: overrides ``settings.allow_unauthenticated`` when given.

        Returns:
            The key ring.
        """
        env = os.environ if env is None else env
        keys = {k.sha256: Principal(k.name, admin=k.admin) for k in settings.api_keys}
        plain = [k.strip() for k in env.get(ENV_KEYS, "").split(",") if k.strip()]
        for i, key in enumerate(plain, 1):
            keys.setdefault(hash_key(key), Principal(f"env-{i}"))
        allow = (
            settings.allow_unauthenticated
            if allow_unauthenticated is None
            else allow_unauthenticated
        )
        return cls(keys, allow_unauthenticated=allow)

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def enabled(self) -> bool:
        """Are keys required (at least one is configured)?"""
        return bool(self._keys)

    def check(
        self, authorization: str | None, *, client_host: str | None, host: str | None = None
    ) -> Principal:
        """The caller behind an ``Authorization`` header.

        Args:
            authorization: the header's value (``Bearer <key>``), or None.
            client_host: the peer address (for the loopback rule without keys).
            host: the request's ``Host`` header: without keys, a loopback server answers
                only requests addressed to a loopback name (a DNS-rebinding page sends its
                own domain).

        Returns:
            The key's principal (``ANONYMOUS`` when no keys are configured).

        Raises:
            APIError: 401 for a missing or wrong key, or a non-loopback caller of a server
                without keys; 403 for a keyless loopback request addressed to another host.
        """
        if not self._keys:
            if self.allow_unauthenticated:
                return ANONYMOUS
            if is_loopback(client_host):
                check_host(host)
                return ANONYMOUS
            raise _unauthorized(
                "this server has no API keys and answers only loopback clients: configure "
                f"server.api_keys or {ENV_KEYS}, or start it with --allow-unauthenticated"
            )
        if not authorization:
            raise _unauthorized("missing API key: send the header Authorization: Bearer <your key>")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized("malformed Authorization header: use Authorization: Bearer <key>")
        principal = self._keys.get(hash_key(token.strip()))
        if principal is None:
            raise _unauthorized("incorrect API key provided: check the key you were given")
        return principal


__all__ = [
    "ANONYMOUS",
    "ENV_KEYS",
    "KeyRing",
    "Principal",
    "check_host",
    "hash_key",
    "host_name",
    "is_loopback",
]
