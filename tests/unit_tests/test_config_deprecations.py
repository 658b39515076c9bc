"""One home per setting: each old spelling still loads for a release, warns naming the new one,
and does what the new one does; both given and different is a ConfigError naming both."""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from langchain_core.messages import HumanMessage
from typer.testing import CliRunner

from aco_langchain import ACOConfig, ACORouterChatModel
from aco_langchain.agent.optimizer import ACOOptimizer
from aco_langchain.cli.main import app
from aco_langchain.config import load_config
from aco_langchain.config_deprecations import FILE_KEYS, MODEL_KWARGS, STANDARD_KWARGS
from aco_langchain.config_sources import setting_sources
from aco_langchain.errors import BudgetExceededError, ConfigError, SettingMovedWarning
from aco_langchain.routing import RuleRouter
from aco_langchain.server.service import ServerState
from aco_langchain.spend.ledger import open_ledger
from aco_langchain.testing import ScriptedChatModel
from tests.settings import configured

runner = CliRunner()


def _tiers(**override: ScriptedChatModel) -> dict[int, ScriptedChatModel]:
    tiers = {n: ScriptedChatModel(script=[f"tier {n}"], model=f"t{n}") for n in range(1, 6)}
    tiers.update({int(k[1:]): v for k, v in override.items()})
    return tiers


def _conn_error() -> Exception:
    return openai.APIConnectionError(request=httpx.Request("POST", "http://127.0.0.1:1"))


def _old(**kw: Any) -> ACORouterChatModel:
    """A model built with old spellings: it must warn, naming each new one."""
    homes = [MODEL_KWARGS[k] for k in kw if k in MODEL_KWARGS]
    with pytest.warns(SettingMovedWarning) as seen:
        llm = ACORouterChatModel(router=RuleRouter(), **kw)
    text = " | ".join(str(w.message) for w in seen)
    for name, home in zip((k for k in kw if k in MODEL_KWARGS), homes, strict=True):
        assert f"ACORouterChatModel({name}=...)" in text and home in text, text
        assert "will be removed in the next release" in text
    return llm


def _new(config: ACOConfig, **kw: Any) -> ACORouterChatModel:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new spelling never warns
        return ACORouterChatModel(router=RuleRouter(), config=config, **kw)


# -- the table ---------------------------------------------------------------------------


def test_every_home_is_a_config_field_and_no_setting_is_a_model_field() -> None:
    cfg = ACOConfig()
    for home in (*MODEL_KWARGS.values(), *STANDARD_KWARGS.values()):
        block, field = home.split(".")
        assert field in type(getattr(cfg, block)).model_fields, home
    for name in (*MODEL_KWARGS, *STANDARD_KWARGS):
        # ledger/cache stay fields for objects (a SpendLedger, a BaseCache); never for URLs
        assert name in ("ledger", "cache") or name not in ACORouterChatModel.model_fields, name
    assert FILE_KEYS["server.request_timeout_s"] == "routing.max_latency_per_call_s"


# -- old model arguments: same effect as the new spelling ----------------------------------


def test_old_cascade_argument_escalates_like_cascade_enabled() -> None:
    def doubtful() -> dict[int, ScriptedChatModel]:
        return _tiers(t1=ScriptedChatModel(script=["Paris"], model="t1", logprob=-3.0))

    q = "What is the capital of France?"
    old = _old(cascade=True, tier_models=doubtful())
    new = _new(configured(cascade={"enabled": True}), tier_models=doubtful())
    assert old.config.cascade.enabled is True
    for llm in (old, new):
        meta = llm.invoke(q).response_metadata["aco"]
        assert meta["escalated"] and meta["tier"] == 2, meta


def test_standard_max_retries_argument_is_routing_max_retries() -> None:
    # LangChain's standard argument: no warning, and routing.max_retries is the one value.
    def dead() -> ScriptedChatModel:
        return ScriptedChatModel(script=[_conn_error()], cycle=True, model="dead")

    runs = []
    for make in (
        lambda t: _new(configured(routing={"retry_base_delay_s": 0.0}), tier_models=t,
                       max_retries=1),
        lambda t: _new(configured(routing={"retry_base_delay_s": 0.0, "max_retries": 1}),
                       tier_models=t),
    ):  # fmt: skip
        t3 = dead()
        llm = make(_tiers(t3=t3))
        assert llm.config.routing.max_retries == 1
        meta = llm.invoke("hi", force_tier=3).response_metadata["aco"]
        runs.append((len(t3.calls), meta["tier"]))
    assert runs == [(2, 4), (2, 4)]  # one try + one retry on tier 3, then tier 4


def test_standard_timeout_argument_is_the_deadline_setting() -> None:
    plan = _new(ACOConfig(), tier_models=_tiers(), timeout=0.5).plan([HumanMessage("hi")], {})
    assert (plan.deadline.budget_s, plan.deadline.source) == (
        0.5, "routing.max_latency_per_call_s=0.5",
    )  # fmt: skip


def test_old_retry_base_delay_argument_waits_like_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("random.uniform", lambda a, b: b)  # backoff without jitter: the base
    waits = []
    for build in (
        lambda t: _old(retry_base_delay_s=0.3, tier_models=t),
        lambda t: _new(configured(routing={"retry_base_delay_s": 0.3}), tier_models=t),
    ):
        flaky = ScriptedChatModel(script=[_conn_error(), "ok"], cycle=False, model="flaky")
        llm = build(_tiers(t2=flaky))
        start = time.monotonic()
        assert llm.invoke("hi", force_tier=2).content == "ok"
        waits.append(time.monotonic() - start)
    assert min(waits) >= 0.3, waits  # each waited the base delay before its retry


def test_old_cooldown_arguments_skip_a_failing_tier_like_the_settings() -> None:
    routing = {"cooldown_after": 1, "cooldown_s": 60.0, "retry_base_delay_s": 0.0}
    for build in (
        lambda t: _old(cooldown_after=1, cooldown_s=60.0, retry_base_delay_s=0.0, tier_models=t),
        lambda t: _new(configured(routing=routing), tier_models=t),
    ):
        dead = ScriptedChatModel(script=[ValueError("down")], model="dead")
        llm = build(_tiers(t2=dead))
        llm.invoke("hi", force_tier=2)
        before = len(dead.calls)
        msg = llm.invoke("hi", force_tier=2)
        assert len(dead.calls) == before  # skipped while it cools down
        assert "cooling down" in msg.response_metadata["aco"]["reason"]


def test_old_ledger_url_argument_records_there_and_still_wins_over_the_env(
    tmp_path: Path,
) -> None:
    # conftest sets ACO_LEDGER_URL=memory://; the old argument won over it, and still does.
    url = f"sqlite:///{tmp_path / 'old.db'}"
    llm = _old(ledger=url, tier_models=_tiers())
    assert llm.config.ledger.url == url and llm.spend_ledger.url == url
    llm.invoke("hi", force_tier=2, aco_run_id="r-old")
    assert open_ledger(url).spent("r-old") > 0
    new = _new(ACOConfig(), tier_models=_tiers(), ledger=open_ledger(url))
    new.invoke("hi", force_tier=2, aco_run_id="r-new")
    assert open_ledger(url).spent("r-new") == open_ledger(url).spent("r-old")


def test_old_cache_url_argument_answers_repeats_like_cache_url(tmp_path: Path) -> None:
    for i, build in enumerate(
        (
            lambda t, url: _old(cache=url, tier_models=t),
            lambda t, url: _new(ACOConfig(cache={"url": url, "ttl_s": 60}), tier_models=t),
        )
    ):
        tier = ScriptedChatModel(script=["Lima."], cycle=True)
        llm = build({n: tier for n in range(1, 6)}, f"sqlite:///{tmp_path / f'c{i}.db'}")
        llm.invoke("Capital of Peru?", force_tier=2)
        again = llm.invoke("Capital of Peru?", force_tier=2)
        assert len(tier.calls) == 1 and again.response_metadata["aco"]["cache_hit"] is True
    assert llm.cache.ttl_s == 60  # type: ignore[union-attr]  # cache.ttl_s is honoured too


def test_optimizer_ledger_url_is_the_same_old_spelling(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'opt.db'}"
    with pytest.warns(SettingMovedWarning, match=r"ACOOptimizer\(ledger=\.\.\.\).*ledger\.url"):
        opt = ACOOptimizer(ledger=url)
    assert opt.config.ledger.url == url and opt.ledger.url == url


def test_the_warning_points_at_the_users_line() -> None:
    with pytest.warns(SettingMovedWarning) as seen:
        ACORouterChatModel(router=RuleRouter(), tier_models=_tiers(), cascade=False)
    assert seen[0].filename == __file__


# -- conflicts -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "config", "names"),
    [
        ({"cascade": True}, {"cascade": {"enabled": False}}, "cascade.enabled"),
        ({"timeout": 1.0}, {"routing": {"max_latency_per_call_s": 30}}, "max_latency_per_call_s"),
        ({"max_retries": 1}, {"routing": {"max_retries": 2}}, "routing.max_retries"),
        ({"cooldown_s": 5.0}, {"routing": {"cooldown_s": 9.0}}, "routing.cooldown_s"),
    ],
)
def test_an_argument_and_its_home_disagreeing_is_one_config_error(
    kwargs: dict[str, Any], config: dict[str, Any], names: str
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SettingMovedWarning)
        with pytest.raises(ConfigError) as err:
            ACORouterChatModel(router=RuleRouter(), config=config, **kwargs)
    name = next(iter(kwargs))
    assert f"ACORouterChatModel({name}=...)" in str(err.value) and names in str(err.value)


def test_a_ledger_url_conflict_never_prints_the_urls(tmp_path: Path) -> None:
    secret = "postgresql://u:hunter2@db/x"
    with pytest.warns(SettingMovedWarning), pytest.raises(ConfigError) as err:
        ACORouterChatModel(config={"ledger": {"url": f"sqlite:///{tmp_path}/a.db"}}, ledger=secret)
    assert "ledger.url" in str(err.value) and "hunter2" not in str(err.value)


def test_the_same_value_in_both_places_loads() -> None:
    with pytest.warns(SettingMovedWarning):
        llm = ACORouterChatModel(config={"cascade": {"enabled": True}}, cascade=True)
    assert llm.config.cascade.enabled is True


def test_a_bad_old_value_is_a_config_error_naming_its_home() -> None:
    with pytest.warns(SettingMovedWarning), pytest.raises(ConfigError, match="cooldown_after"):
        ACORouterChatModel(cooldown_after=0)


# -- old config keys -----------------------------------------------------------------------


def _file(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


OLD_FILE = """\
server:
  request_timeout_s: 2.5
  api_keys:
    - {name: team-a, sha256: "%s", budget_usd: 0.0}
""" % ("a" * 64)
NEW_FILE = """\
routing:
  max_latency_per_call_s: 2.5
budgets:
  keys: {team-a: 0.0}
server:
  api_keys:
    - {name: team-a, sha256: "%s"}
""" % ("a" * 64)


def test_old_file_keys_load_warn_and_equal_the_new_ones(tmp_path: Path) -> None:
    old_path = _file(tmp_path, OLD_FILE)
    with pytest.warns(SettingMovedWarning) as seen:
        old = load_config(old_path)
    text = " | ".join(str(w.message) for w in seen)
    assert f"{old_path}: server.request_timeout_s is deprecated" in text
    assert "routing.max_latency_per_call_s" in text and "budgets.keys.team-a" in text
    assert "server.api_keys[team-a].budget_usd" in text
    new = load_config(_file(tmp_path, NEW_FILE, "new.yaml"))
    assert old.model_dump() == new.model_dump()  # everything reads the same config


def test_old_request_timeout_key_is_the_servers_and_the_calls_deadline(tmp_path: Path) -> None:
    with pytest.warns(SettingMovedWarning):
        cfg = load_config(_file(tmp_path, OLD_FILE))
    state = ServerState(cfg, llm=ACORouterChatModel(config=cfg, tier_models=_tiers()))
    plan = state.llm.plan([HumanMessage("hi")], {})
    assert state.timeout_s == plan.deadline.budget_s == 2.5


def test_old_key_budget_refuses_like_budgets_keys(tmp_path: Path) -> None:
    for text in (OLD_FILE, NEW_FILE):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SettingMovedWarning)
            cfg = configured(
                load_config(_file(tmp_path, text)), routing={"on_budget_exceeded": "raise"}
            )
        llm = ACORouterChatModel(config=cfg, tier_models=_tiers(), router=RuleRouter())
        with pytest.raises(BudgetExceededError, match="key:team-a"):
            llm.invoke("hi", force_tier=3, aco_api_key="team-a")
        assert llm.invoke("hi", force_tier=3, aco_api_key="team-b").content == "tier 3"


@pytest.mark.parametrize(
    ("text", "both"),
    [
        (
            "routing: {max_latency_per_call_s: 10}\nserver: {request_timeout_s: 5}\n",
            ("server.request_timeout_s", "routing.max_latency_per_call_s"),
        ),
        (
            "budgets: {keys: {team-a: 1.0}}\nserver:\n  api_keys:\n"
            '    - {name: team-a, sha256: "%s", budget_usd: 2.0}\n' % ("a" * 64),
            ("server.api_keys[team-a].budget_usd", "budgets.keys.team-a"),
        ),
    ],
)
def test_an_old_key_and_its_home_disagreeing_is_a_config_error(
    tmp_path: Path, text: str, both: tuple[str, str]
) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(_file(tmp_path, text))
    assert all(name in str(err.value) for name in both), str(err.value)


def test_sources_name_the_deprecated_spelling(tmp_path: Path) -> None:
    path = _file(tmp_path, OLD_FILE)
    with pytest.warns(SettingMovedWarning):
        rows = {s.key: s for s in setting_sources(str(path), env={})}
    row = rows["routing.max_latency_per_call_s"]
    assert (row.value, row.source) == (2.5, f"file {path} (deprecated: server.request_timeout_s)")
    key = rows["budgets.keys.team-a"]
    assert key.source == f"file {path} (deprecated: server.api_keys[team-a].budget_usd)"
    assert rows["routing.max_retries"].source == "default"


def test_cli_warns_once_per_old_key_and_still_runs(tmp_path: Path) -> None:
    path = _file(tmp_path, OLD_FILE)
    res = runner.invoke(app, ["config", "show", "--sources", "--json", "--config", str(path)])
    assert res.exit_code == 0, res.output
    assert "warning: " in res.stderr and "routing.max_latency_per_call_s" in res.stderr
    rows = {r["key"]: r for r in json.loads(res.stdout)}
    assert rows["routing.max_latency_per_call_s"]["source"].endswith(
        "(deprecated: server.request_timeout_s)"
    )


def test_the_package_builds_its_own_models_with_the_new_spellings(tmp_path: Path) -> None:
    # The server, collect and replay build router models from a config: none of them warns.
    from aco_langchain.cli.collect_cmds import build_llm
    from aco_langchain.replay.runner import replay_prompts

    cfg = ACOConfig(cascade={"enabled": True}, cache={"url": f"sqlite:///{tmp_path / 'c.db'}"})
    builders: list[Callable[[], Any]] = [
        lambda: ServerState(cfg),
        lambda: build_llm(cfg, "run", None),
        lambda: replay_prompts([], cfg),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        for build in builders:
            build()
    assert ServerState(cfg).llm.cache is False  # the server caches whole requests itself
    assert build_llm(cfg, "run", None).config.cascade.enabled is False
