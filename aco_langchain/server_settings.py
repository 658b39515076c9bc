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
    """One bearer key of ``aco serve``, stored as its SHA-256 (never the key itself)."""

    name: str = Field(..., min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    sha256: str = Field(
        ...,
        pattern=r"^[0-9a-f]{64}$",
        description="Hex SHA-256 of the key (`aco serve --hash-key KEY` prints it).",
    )
    budget_usd: float | None = Field(
        None,
        ge=0.0,
        description="USD this key may spend per budgets.budget_duration (a budgets.keys entry).",
    )
    admin: bool = Field(False, description="Reads every key's spend, budgets and runs.")


class ServerSettings(_Strict):
    """``aco serve``: auth, limits and timeouts of the OpenAI-compatible server."""

    api_keys: list[ApiKeySpec] = Field(
        default_factory=list,
        description="Bearer keys (hashed); ACO_SERVER_API_KEYS adds plain keys from the env.",
    )
    max_body_bytes: int = Field(1_048_576, gt=0, description="Larger request bodies get 413.")
    request_timeout_s: float | None = Field(
        None, gt=0.0, description="Deadline of one request; None: routing.max_latency_per_call_s."
    )
    allow_unauthenticated: bool = Field(
        False, description="Serve without keys on a non-loopback address (not recommended)."
    )
    docs: bool = Field(False, description="Serve /docs and /openapi.json (behind the keys).")

    @field_validator("api_keys", mode="before")
    @classmethod
    def _no_plain_keys(cls, value: Any) -> Any:
        if isinstance(value, list) and any(isinstance(v, str) for v in value):
            raise ValueError(
                "api_keys entries are {name, sha256, budget_usd}: store the key's SHA-256, "
                "never the key (`aco serve --hash-key KEY` prints it), or pass plain keys in "
                "ACO_SERVER_API_KEYS"
            )
        return value


class CacheSettings(_Strict):
    """The response cache shared by ``aco serve`` and ``ACORouterChatModel(cache=...)``."""

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
