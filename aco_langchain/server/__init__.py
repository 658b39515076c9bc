"""``aco serve``: the router as an OpenAI-compatible HTTP service (FastAPI + uvicorn).

Needs the ``server`` extra: ``pip install 'aco-langchain[server]'``.

Example:
    ```python
    from aco_langchain.server import create_app
    app = create_app("config.yaml")     # then: uvicorn.run(app, port=8000)
    ```
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aco_langchain.server.app import create_app
    from aco_langchain.server.service import ServerState

__all__ = ["ServerState", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from aco_langchain.server.app import create_app

        return create_app
    if name == "ServerState":
        from aco_langchain.server.service import ServerState

        return ServerState
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
