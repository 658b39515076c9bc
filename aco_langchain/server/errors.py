"""Errors on the wire: every failure as OpenAI's error JSON, never a traceback or a secret.

``{"error": {"message": ..., "type": ..., "param": ..., "code": ...}}`` is what the official
``openai`` client parses into its typed exceptions, so our callers see ``AuthenticationError``,
``BadRequestError``, ``NotFoundError``... with a message that names the field and the fix.

Mapping of our own errors (:mod:`aco_langchain.errors`):

============================  ======  ======================  =================
error                         status  type                    code
============================  ======  ======================  =================
BudgetExceededError           402     insufficient_quota      budget_exceeded
TierUnavailableError          503     server_error            tier_unavailable
InvalidRequestError           400     invalid_request_error   invalid_request
RoutingError (constraints)    400     invalid_request_error   no_tier_fits
DeadlineExceededError         504     timeout                 deadline_exceeded
AllTiersFailedError           502     upstream_error          all_tiers_failed
StreamInterruptedError        502     upstream_error          stream_interrupted
UnparsedReplyError            502     upstream_error          unparsed_reply
ConfigError, other ACOError   500     server_error            server_config_error (the
                                                              message only in the log)
============================  ======  ======================  =================

Errors the client should not retry carry ``x-should-retry: false`` (the ``openai`` client
honours it), because the router has already retried and fallen back.

Example:
    ```python
    raise APIError(400, "n=3: only n=1 is supported", param="n")
    ```
"""

from __future__ import annotations

import logging
from typing import Any

from aco_langchain.errors import (
    ACOError,
    AllTiersFailedError,
    BudgetExceededError,
    DeadlineExceededError,
    InvalidRequestError,
    RoutingError,
    StreamInterruptedError,
    TierUnavailableError,
    UnparsedReplyError,
)

logger = logging.getLogger(__name__)

_NO_RETRY = {"x-should-retry": "false"}
#: Per-call option names a RoutingError message may start with (``max_cost_usd=0.0 is ...``).
_OPTION_PARAMS = ("max_cost_usd", "max_latency_ms", "min_quality", "force_model", "force_tier")


class APIError(Exception):
    """An HTTP error answered as OpenAI's error JSON.

    Args:
        status: the HTTP status.
        message: what is wrong and the fix (shown to the caller as is).
        type: OpenAI's error type (``invalid_request_error``, ``server_error``...).
        param: the request field at fault, when one is.
        code: a short machine-readable code.
        headers: extra response headers.

    Example:
        ```python
        raise APIError(404, "model 'x' does not exist", param="model", code="model_not_found")
        ```
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",  # noqa: A002 - OpenAI's field name
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """OpenAI's error JSON for this error."""
        return error_body(self.message, type=self.type, param=self.param, code=self.code)


def error_body(
    message: str,
    *,
    type: str = "invalid_request_error",  # noqa: A002
    param: str | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    """``{"error": {message, type, param, code}}``."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def from_aco_error(exc: ACOError) -> APIError:
    """The wire error for one of our errors (see the table in the module docstring).

    Args:
        exc: the error a call raised.

    Returns:
        The :class:`APIError` to answer with; its message is the error's own (user-worded,
        secret-free: provider errors are masked by ``describe_error``).
    """
    text = str(exc)
    if isinstance(exc, BudgetExceededError):
        return APIError(
            402, text, type="insufficient_quota", code="budget_exceeded", headers=_NO_RETRY
        )
    if isinstance(exc, TierUnavailableError):
        return APIError(503, text, type="server_error", code="tier_unavailable", headers=_NO_RETRY)
    if isinstance(exc, InvalidRequestError):  # the caller's request as sent (blank prompt...)
        return APIError(400, text, code="invalid_request")
    if isinstance(exc, RoutingError):
        param = next((p for p in _OPTION_PARAMS if text.startswith(p)), None)
        return APIError(400, text, param=param, code="no_tier_fits")
    if isinstance(exc, DeadlineExceededError):
        return APIError(504, text, type="timeout", code="deadline_exceeded", headers=_NO_RETRY)
    if isinstance(exc, StreamInterruptedError):
        return APIError(
            502, text, type="upstream_error", code="stream_interrupted", headers=_NO_RETRY
        )
    if isinstance(exc, UnparsedReplyError):  # billed, recorded; the caller's cap or schema
        return APIError(502, text, type="upstream_error", code="unparsed_reply", headers=_NO_RETRY)
    if isinstance(exc, AllTiersFailedError):
        return APIError(
            502, text, type="upstream_error", code="all_tiers_failed", headers=_NO_RETRY
        )
    # Configuration, ledger and cache problems name URLs, paths and settings: they are
    # the operator's to read (the log), never the caller's (no config in an error body).
    logger.error("server-side problem answering a request: %s", text)
    return APIError(
        500,
        f"the server could not answer ({type(exc).__name__}; details are in the server's "
        "log): tell its operator",
        type="server_error",
        code="server_config_error",
        headers=_NO_RETRY,
    )


def validation_error(errors: list[dict[str, Any]]) -> APIError:
    """A 400 naming the first bad field of a request body (pydantic's error list).

    Args:
        errors: ``RequestValidationError.errors()`` / ``ValidationError.errors()``.

    Returns:
        A 400 ``invalid_request_error`` whose ``param`` is the dotted field path.
    """
    if not errors:
        return APIError(400, "the request body is not valid")
    first = errors[0]
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    # Union branches add their type name to the path (messages.0.str); drop those.
    loc = [p for p in loc if not p.startswith(("function-", "json-or-python"))]
    param = ".".join(loc) or None
    kind = first.get("type", "")
    msg = str(first.get("msg", "is not valid"))
    if kind == "json_invalid":
        return APIError(400, "the request body is not valid JSON", code="invalid_json")
    if kind == "extra_forbidden":
        text = f"unrecognized request argument supplied: {param}"
    elif kind == "missing":
        text = f"{param}: required field is missing"
    else:
        msg = msg.removeprefix("Value error, ")
        text = f"{param}: {msg}" if param else msg
    more = len(errors) - 1
    if more:
        text += f" (and {more} more problem{'s' if more > 1 else ''})"
    return APIError(400, text, param=param, code="invalid_value")


__all__ = ["APIError", "error_body", "from_aco_error", "validation_error"]
