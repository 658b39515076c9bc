"""Input hygiene at the server's edge (issue 19, item 9): a client's mistake is a 400 naming
the field, never a 5xx, and no error body holds configuration.

The server is the real FastAPI app in process (Starlette's ``TestClient``); its tiers point at
``tests/fault_server.FaultServer`` (loopback); the ledger and cache are SQLite files. Bodies
are sent as raw JSON bytes, so a lone surrogate (``"\\ud800"``) reaches the server exactly as
a client can send it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from aco_langchain.config import config_from_dict  # noqa: E402
from aco_langchain.server import create_app  # noqa: E402
from aco_langchain.server.auth import hash_key  # noqa: E402
from tests.fault_server import FaultServer  # noqa: E402

KEY = "sk-hygiene-key"
SECRET_DIR = "secret-ledger-dir-7f3a"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, list[str]]]:
    tmp = tmp_path_factory.mktemp(SECRET_DIR)
    with FaultServer(text="Fine.", max_requests=5000, max_lifetime_s=900) as up:
        models = {
            f"tier{n}": {
                "model_id": f"t{n}-model",
                "provider": "openai-compatible",
                "base_url": up.base_url,
                "cost_per_1k_input": 0.01 * n,
                "cost_per_1k_output": 0.01 * n,
                "max_context": 8192,
                "is_local": n == 1,
            }
            for n in range(1, 6)
        }
        ledger_url = f"sqlite:///{tmp / 'ledger.db'}"
        cache_url = f"sqlite:///{tmp / 'cache.db'}"
        cfg = config_from_dict(
            {
                "routing": {"max_retries": 0, "max_output_tokens": 16},
                "ledger": {"url": ledger_url},
                "cache": {"url": cache_url},
                "router": "rules",
                "models": models,
                "server": {"api_keys": [{"name": "team", "sha256": hash_key(KEY)}]},
            }
        )
        # What must never appear in a response body.
        secrets = [SECRET_DIR, str(tmp), up.base_url, f"127.0.0.1:{up.port}", hash_key(KEY)]
        with TestClient(create_app(cfg), raise_server_exceptions=False) as client:
            yield client, secrets


def _post(client: TestClient, path: str, raw: str) -> Any:
    return client.post(
        path,
        content=raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw,
        headers={"authorization": f"Bearer {KEY}", "content-type": "application/json"},
    )


def _chat(content: Any, **extra: Any) -> str:
    body = {"model": "aco", "messages": [{"role": "user", "content": content}], **extra}
    return json.dumps(body)  # ensure_ascii: a lone surrogate is sent as the escape \ud800


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        (_chat("hi \ud800 there"), "messages.0.content"),
        (_chat("hi", user="bob\ud800"), "user"),
        (_chat([{"type": "text", "text": ""}]), "messages.0"),
        (_chat([{"type": "text", "text": "   "}]), "messages.0"),
        (_chat([{"type": "text"}]), "messages.0"),
        (_chat([]), "messages.0"),
        (_chat([{"type": "bogus", "text": "x"}]), "messages.0"),
        (_chat("hi", user="nul\x00byte"), "user"),
        (_chat("nul \x00 in content"), "messages.0.content"),
        (_chat("hi", user="u" * 100_000), "user"),
        (
            json.dumps({"model": "m" * 10_000, "messages": [{"role": "user", "content": "hi"}]}),
            "model",
        ),
    ],
)
def test_bad_input_is_a_400_naming_the_field(
    served: tuple[TestClient, list[str]], raw: str, param: str
) -> None:
    client, _ = served
    r = _post(client, "/v1/chat/completions", raw)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert (err["param"] or "").startswith(param), err
    assert len(r.content) < 2000  # a 10 KB model name or a 100 KB user is not echoed


def test_bad_run_header_and_generate_fields(served: tuple[TestClient, list[str]]) -> None:
    client, _ = served
    r = client.post(
        "/v1/chat/completions",
        json={"model": "aco", "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {KEY}", "x-aco-run-id": "r" * 1000},
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "x-aco-run-id"
    r = _post(client, "/generate", json.dumps({"prompt": "a \ud800 b"}))
    assert r.status_code == 400 and r.json()["error"]["param"] == "prompt"
    r = _post(client, "/route", json.dumps({"prompt": "a \x00 b"}))
    assert r.status_code == 400 and r.json()["error"]["param"] == "prompt"


# -- the property: any body gets a 2xx or a 4xx, never a 5xx, never a config value ----------

_odd = st.sampled_from(["", " ", "\x00", "\ud800", "\udfff", "a\ud83d", "🙂", "\n", "x" * 300])
_text = st.one_of(_odd, st.text(st.characters(exclude_categories=[]), max_size=40))
_part = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": _text}),
    st.fixed_dictionaries({"type": _text}),
    st.dictionaries(_text, _text, max_size=2),
)
_content = st.one_of(_text, st.lists(_part, max_size=3), st.none(), st.integers())
_message = st.fixed_dictionaries(
    {
        "role": st.sampled_from(["user", "system", "assistant", "tool", "developer", "robot"]),
        "content": _content,
    },
    optional={"name": _text, "tool_call_id": _text},
)
_number = st.one_of(
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.none(),
    _text,
)
_chat_body = st.fixed_dictionaries(
    {
        "model": st.one_of(st.sampled_from(["aco", "tier-1", "tier-2", "t3-model"]), _text),
        "messages": st.lists(_message, max_size=3),
    },
    optional={
        "user": _text,
        "temperature": _number,
        "max_tokens": _number,
        "max_cost_usd": _number,
        "stream": st.booleans(),
        "stop": st.one_of(_text, st.lists(_text, max_size=2)),
        "task_type": _text,
        "cache": st.booleans(),
        "x_unknown_field": _text,
    },
)
_generate_body = st.fixed_dictionaries(
    {"prompt": _text},
    optional={"max_cost_usd": _number, "force_model": _text, "min_quality": _number},
)


def _raw(body: Any) -> bytes:
    # allow_nan: NaN/Infinity tokens are what a sloppy client sends; the server must cope.
    return json.dumps(body).encode("ascii")


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    target=st.sampled_from(["/v1/chat/completions", "/generate", "/route"]),
    chat=_chat_body,
    gen=_generate_body,
)
def test_any_body_is_2xx_or_4xx_and_never_shows_config(
    served: tuple[TestClient, list[str]], target: str, chat: Any, gen: Any
) -> None:
    client, secrets = served
    body = chat if target == "/v1/chat/completions" else gen
    r = _post(client, target, _raw(body))  # type: ignore[arg-type]
    assert r.status_code < 500, (r.status_code, r.text[:500], body)
    text = r.text
    for secret in secrets:
        assert secret not in text, (secret, text[:500])


def test_server_side_errors_do_not_carry_the_ledger_url() -> None:
    """Issue: a NUL byte in user with a Postgres ledger gave a 500 whose body held the
    ledger URL. Whatever fails on the server's side (here the ledger, whose error names its
    URL), the body names no configuration; the log has the details."""
    from aco_langchain import ACORouterChatModel
    from aco_langchain.errors import LedgerError
    from aco_langchain.server.service import ServerState
    from aco_langchain.spend.ledger import MemoryLedger
    from aco_langchain.testing import ScriptedChatModel

    url = "postgresql://aco:pw-9f2c@db.internal:5432/spend?table_prefix=x_"

    class Broken(MemoryLedger):
        url = "postgresql://aco:***@db.internal:5432/spend"

        def hold(self, *a: Any, **k: Any) -> Any:
            raise LedgerError(f"ledger {url}: cannot hold (connection lost)")

        def records(self, *a: Any, **k: Any) -> Any:
            raise LedgerError(f"ledger {url}: cannot read rows")

    cfg = config_from_dict({"router": "rules"})
    tiers = {n: ScriptedChatModel(script=["ok"], model=f"t{n}") for n in range(1, 6)}
    llm = ACORouterChatModel(config=cfg, tier_models=tiers, ledger=Broken())
    app = create_app(state=ServerState(cfg, llm=llm))
    with TestClient(app, raise_server_exceptions=False, client=("127.0.0.1", 5000)) as client:
        host = {"host": "127.0.0.1:8000"}
        r = client.post(
            "/v1/chat/completions",
            json={"model": "tier-2", "messages": [{"role": "user", "content": "hi"}]},
            headers=host,
        )
        s = client.get("/v1/spend", headers=host)
    for resp in (r, s):
        assert resp.status_code == 500, resp.text
        assert resp.json()["error"]["type"] == "server_error"
        for secret in ("postgres", "db.internal", "5432", "pw-9f2c", "table_prefix"):
            assert secret not in resp.text, resp.text
