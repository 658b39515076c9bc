"""Start, stop and query the background ``llama-server`` (state recorded in the cache dir)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator

from aco_langchain.config import LocalModelSettings
from aco_langchain.errors import LocalModelError
from aco_langchain.providers.local.state import (
    LLAMA_CPP_PYTHON_VERSION,
    MODEL_ALIAS,
    ServerInfo,
    ServerStatus,
    _clear_state,
    _file_lock,
    _healthy,
    _info,
    _log_tail,
    _pid_alive,
    _read_state,
    _server_dir,
    _write_json_atomic,
    binary_path,
    find_free_port,
    is_built,
    log_path,
    model_path,
    pid_path,
    state_path,
)

# --------------------------------------------------------------------------- serve


def start(settings: LocalModelSettings, *, wait_s: float = 60.0) -> ServerInfo:
    """Start llama-server in the background (or return the one already running).

    Binds ``settings.host`` (127.0.0.1) on ``settings.port`` or a free port, waits up to
    ``wait_s`` seconds for ``/health``, and records pid + state in the cache dir. The server
    outlives the calling process; stop it with ``stop(settings)``.

    Usage::

        info = start(ACOConfig().local_model)
        info.base_url  # 'http://127.0.0.1:41234/v1'
    """
    with _file_lock(_server_dir(settings) / ".start.lock"):
        state = _read_state(settings)
        if state is not None:
            return _info(state)
        binary = binary_path(settings)
        if not is_built(settings):
            raise LocalModelError(
                f"llama-server is not built ({binary} missing): run `aco local-model build` first"
            )
        model = model_path()
        host = settings.host
        port = settings.port or find_free_port(host)
        if settings.port:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                if s.connect_ex((host, port)) == 0:
                    raise LocalModelError(
                        f"port {port} on {host} is already in use: free it or set "
                        "local_model.port to another port (or leave it unset for a free one)"
                    )
        cmd = [
            str(binary),
            "--model",
            str(model),
            "--host",
            host,
            "--port",
            str(port),
            "--ctx-size",
            str(settings.ctx_size),
            "--threads",
            str(settings.threads),
            "--alias",
            MODEL_ALIAS,
            "--parallel",
            "1",
        ]
        log = log_path(settings)
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as fh:
            fh.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n".encode())
            fh.flush()
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        base_url = f"http://{host}:{port}/v1"
        state = {
            "pid": proc.pid,
            "host": host,
            "port": port,
            "base_url": base_url,
            "model_path": str(model),
            "binary": str(binary),
            "log_path": str(log),
            "version": LLAMA_CPP_PYTHON_VERSION,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        pid_path(settings).write_text(f"{proc.pid}\n", encoding="utf-8")
        deadline = time.monotonic() + wait_s
        while True:
            if proc.poll() is not None:
                _clear_state(settings)
                raise LocalModelError(
                    f"llama-server exited with code {proc.returncode} during start-up; "
                    f"log {log}:\n{_log_tail(log)}"
                )
            if _healthy(host, port, timeout=1.0):
                break
            if time.monotonic() > deadline:
                _terminate(proc.pid, popen=proc)
                _clear_state(settings)
                raise LocalModelError(
                    f"llama-server did not become ready within {wait_s:.0f} s; "
                    f"log {log}:\n{_log_tail(log)}"
                )
            time.sleep(0.2)
        _write_json_atomic(state_path(settings), state)
        return _info(state)


def _terminate(
    pid: int, *, popen: subprocess.Popen[bytes] | None = None, grace: float = 10.0
) -> None:
    """SIGTERM ``pid`` (only that pid), then SIGKILL after ``grace`` seconds; reap if our child."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if popen is not None and popen.poll() is not None:
            return
        with contextlib.suppress(ChildProcessError):
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                return
        if not _pid_alive(pid, check_cmd=False):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def stop(settings: LocalModelSettings) -> bool:
    """Stop the server recorded in the cache dir; True if one was running and was stopped.

    Usage::

        stop(ACOConfig().local_model)
    """
    state = _read_state(settings)
    if state is None:
        return False
    _terminate(int(state["pid"]))
    _clear_state(settings)
    return True


def status(settings: LocalModelSettings, *, check_health: bool = True) -> ServerStatus:
    """Build and run state of the local tier (one quick ``/health`` probe when running).

    Usage::

        status(cfg.local_model).running
    """
    try:
        model: str | None = str(model_path())
    except LocalModelError:
        model = None
    state = _read_state(settings)
    built, binary, log = is_built(settings), str(binary_path(settings)), str(log_path(settings))
    if state is None:
        return ServerStatus(
            running=False, built=built, binary_path=binary, model_path=model, log_path=log
        )
    host, port = str(state["host"]), int(state["port"])
    return ServerStatus(
        running=True,
        built=built,
        binary_path=binary,
        pid=int(state["pid"]),
        host=host,
        port=port,
        base_url=str(state["base_url"]),
        healthy=_healthy(host, port) if check_health else None,
        model_path=str(state.get("model_path") or model),
        log_path=log,
    )


@contextlib.contextmanager
def serve(settings: LocalModelSettings, *, wait_s: float = 60.0) -> Iterator[ServerInfo]:
    """Use the running server, or start one and stop it on exit (only what this started).

    Usage::

        with serve(ACOConfig().local_model) as info:
            llm = ChatOpenAI(base_url=info.base_url, api_key="local")
    """
    existing = _read_state(settings)
    if existing is not None:
        yield _info(existing)
        return
    info = start(settings, wait_s=wait_s)
    try:
        yield info
    finally:
        state = _read_state(settings)
        if state is not None and int(state["pid"]) == info.pid:
            _terminate(info.pid)
            _clear_state(settings)
