from __future__ import annotations

import httpx
import openai
import pytest

from aco_langchain.errors import AllTiersFailedError
from aco_langchain.providers.faults import (
    TierHealth,
    backoff_delay,
    classify_error,
    describe_error,
    fallback_order,
)


def _status(code: int) -> openai.APIStatusError:
    req = httpx.Request("POST", "http://x")
    return openai.APIStatusError("err", response=httpx.Response(code, request=req), body=None)


@pytest.mark.parametrize("code", [429, 500, 502, 503])
def test_transient_statuses_are_retried(code: int) -> None:
    assert classify_error(_status(code)) == "retry"


@pytest.mark.parametrize("code", [400, 401, 403, 404])
def test_permanent_statuses_fall_back(code: int) -> None:
    assert classify_error(_status(code)) == "fallback"


def test_connection_and_timeouts_are_retried() -> None:
    req = httpx.Request("POST", "http://x")
    assert classify_error(openai.APIConnectionError(request=req)) == "retry"
    assert classify_error(openai.APITimeoutError(request=req)) == "retry"
    assert classify_error(TimeoutError()) == "retry"
    assert classify_error(ConnectionRefusedError()) == "retry"
    assert classify_error(ValueError("bad")) == "fallback"


def test_backoff_is_bounded_and_grows() -> None:
    assert backoff_delay(0, 0.0) == 0.0
    for attempt in range(10):
        assert 0 <= backoff_delay(attempt, 0.5, cap_s=8.0) <= 8.0


def test_fallback_order_up_then_down_and_local_only() -> None:
    assert fallback_order(3, {1, 2, 3, 4, 5}, allow_cloud=True, local={1}) == [3, 4, 5, 2, 1]
    assert fallback_order(1, {1, 2, 3}, allow_cloud=False, local={1}) == [1]
    assert fallback_order(2, {1, 4}, allow_cloud=True, local={1}) == [2, 4, 1]


def test_describe_error_hides_keys() -> None:
    text = describe_error(RuntimeError("Incorrect API key provided: sk-abc123"))
    assert "abc123" not in text and "sk-***" in text


def test_health_cooldown_and_recovery() -> None:
    h = TierHealth(cooldown_after=2, cooldown_s=10)
    h.failed(2, now=0)
    assert h.cooling(now=1) == {}
    h.failed(2, now=1)
    assert 2 in h.cooling(now=2)
    assert h.cooling(now=20) == {}
    h.succeeded(2)
    h.failed(2, now=30)
    assert h.cooling(now=31) == {}


def test_all_failed_message_lists_tiers() -> None:
    err = AllTiersFailedError({1: "TimeoutError", 4: "APIStatusError 500: boom"})
    assert "tier 1: TimeoutError" in str(err) and "tier 4: APIStatusError 500" in str(err)
