"""Build ``llama-server`` once from the ``vendor/llama.cpp`` tree of PyPI's llama-cpp-python sdist.

The build runs in a temporary directory and only a finished binary is moved into place.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aco_langchain.config import LocalModelSettings
from aco_langchain.errors import LocalModelError
from aco_langchain.providers.local.state import (
    LLAMA_CPP_PYTHON_VERSION,
    _build_root,
    _file_lock,
    binary_path,
    is_built,
)

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
