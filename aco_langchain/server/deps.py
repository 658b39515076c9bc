"""The server's FastAPI dependencies: the worker's state and the authenticated caller.

Shared by every router of the app (``server/app.py``, ``server/dashboard.py``), so a router
module never imports the app that includes it.

Example:
    ```python
    from aco_langchain.server.deps import Caller, State

    @router.get("/v1/spend")
    async def spend(state: State, caller: Caller) -> Response: ...
    ```
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from aco_langchain.server.auth import Principal
from aco_langchain.server.service import ServerState

# Both dependencies are ``async def``: FastAPI runs a plain ``def`` dependency on a worker
# thread, two thread hand-offs per request for a dict lookup and a SHA-256 (on a busy host
# each hand-off waits for a CPU: they cost more than the work).


async def get_state(request: Request) -> ServerState:
    """The worker's :class:`ServerState` (a FastAPI dependency)."""
    return request.app.state.aco  # type: ignore[no-any-return]


async def get_principal(request: Request) -> Principal:
    """The caller, checked against the bearer keys (a FastAPI dependency).

    Raises:
        APIError: 401 for a missing or wrong key; 403 for a keyless loopback server asked
            under a non-loopback ``Host`` (DNS rebinding).
    """
    state: ServerState = request.app.state.aco
    client = request.client.host if request.client else None
    return state.keys.check(
        request.headers.get("authorization"),
        client_host=client,
        host=request.headers.get("host"),
    )


State = Annotated[ServerState, Depends(get_state)]
Caller = Annotated[Principal, Depends(get_principal)]


__all__ = ["Caller", "State", "get_principal", "get_state"]
