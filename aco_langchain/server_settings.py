"""Settings of ``aco serve`` and the response cache: the ``server:`` and ``cache:`` blocks of
``config.yaml`` (re-exported by :mod:`aco_langchain.config`, which composes them).

Example:
    ```python
    from aco_langchain.config import ServerSettings
    ServerSettings(api_keys=[{"name": "team-a", "sha256": "...", "admin": True}])
    ```
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Strict(BaseModel):
    # The config's own rules: unknown keys are errors, numbers finite (no 1e400 budgets).
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class ApiKeySpec(_Strict):
    """One bearer key of ``aco serve``, stored as its SHA-256 (never the key itself); its
    budget is ``budgets.keys.<name>``."""

    name: str = Field(..., min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    sha256: str = Field(
        ...,
        pattern=r"^[0-9a-f]{64}$",
        description="Hex SHA-256 of the key (`aco serve --hash-key KEY` prints it).",
    )
    admin: bool = Field(False, description="Reads every key's spend, budgets and runs.")


class ServerSettings(_Strict):
    """``aco serve``: auth and limits of the OpenAI-compatible server (a request's deadline is
    ``routing.max_latency_per_call_s``)."""

    api_keys: list[ApiKeySpec] = Field(
        default_factory=list,
        description="Bearer keys (hashed); ACO_SERVER_API_KEYS adds plain keys from the env.",
    )
    max_body_bytes: int = Field(1_048_576, gt=0, description="Larger request bodies get 413.")
    allow_unauthenticated: bool = Field(
        False, description="Serve without keys on a non-loopback address (not recommended)."
    )
    docs: bool = Field(False, description="Serve /docs and /openapi.json (behind the keys).")

    @field_validator("api_keys", mode="before")
    @classmethod
    def _no_plain_keys(cls, value: Any) -> Any:
        if isinstance(value, list) and any(isinstance(v, str) for v in value):
            raise ValueError(
                "api_keys entries are {name, sha256, admin}: store the key's SHA-256, "
                "never the key (`aco serve --hash-key KEY` prints it), or pass plain keys in "
                "ACO_SERVER_API_KEYS"
            )
        return value


class CacheSettings(_Strict):
    """The response cache: ``aco serve`` keys it on each request's body; an
    ``ACORouterChatModel`` whose config sets ``url`` uses it as its LangChain cache."""

    url: str | None = Field(
        None, description="sqlite:///path/to/cache.db or redis://host:6379/0; None: no cache."
    )
    ttl_s: float | None = Field(None, gt=0.0, description="Entry lifetime; None: forever.")

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        from aco_langchain.spend.cache import cache_url_problem

        if value is not None and (problem := cache_url_problem(value)):
            raise ValueError(problem)
        return value


__all__ = ["ApiKeySpec", "CacheSettings", "ServerSettings"]
