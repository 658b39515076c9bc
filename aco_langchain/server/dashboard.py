"""``/dashboard/`` on ``aco serve``: the spend dashboard's page and its data.

The page's files (HTML, CSS, JS) are public; ``/dashboard/data.json`` needs a bearer key
like ``/v1/spend`` (the page asks for one when the server has keys, and sends it from the
tab's session storage). The data is :func:`aco_langchain.dashboard.collect` over the
server's own ledger, limited to the caller's key unless it is an admin key.

Example:
    ```python
    from aco_langchain.server import create_app
    app = create_app("config.yaml")     # GET /dashboard/ is mounted
    ```
"""

from __future__ import annotations

import json

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from aco_langchain.dashboard import collect
from aco_langchain.dashboard.page import SECURITY_HEADERS, static_file
from aco_langchain.server.deps import Caller, State
from aco_langchain.server.errors import APIError

dashboard_router = APIRouter()


@dashboard_router.get("/dashboard", include_in_schema=False)
def dashboard_root() -> RedirectResponse:
    """``/dashboard`` -> ``/dashboard/`` (the page's relative links need the slash)."""
    return RedirectResponse("/dashboard/")


@dashboard_router.get("/dashboard/data.json")
def dashboard_data(state: State, caller: Caller) -> Response:
    """The dashboard's JSON over the server's ledger (bearer key required when keys are set):
    the caller's own key's rows, runs and budget (every key's for an admin key), and never
    the ledger's URL."""
    data = collect(
        state.config,
        ledger=state.llm.spend_ledger,
        tenant=None if caller.sees_all else caller.name,
        show_ledger=False,
    )
    return Response(json.dumps(data), media_type="application/json", headers=SECURITY_HEADERS)


@dashboard_router.get("/dashboard/", include_in_schema=False)
@dashboard_router.get("/dashboard/{name}", include_in_schema=False)
def dashboard_file(name: str = "") -> Response:
    """One of the page's files (``index.html`` for ``/dashboard/``)."""
    try:
        body, ctype = static_file(name)
    except KeyError:
        raise APIError(404, f"no dashboard file {name!r}", code="not_found") from None
    return Response(body, media_type=ctype, headers=SECURITY_HEADERS)


__all__ = ["dashboard_router"]
