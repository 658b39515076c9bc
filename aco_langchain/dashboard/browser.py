"""A screenshot of the dashboard in a real headless chromium (Debian's), driven by playwright.

Playwright only drives the browser found at ``executable``; it never downloads one. Used by
``aco dashboard --screenshot PNG`` (the README's picture) and by the browser test's launch.

Example:
    ```python
    from aco_langchain.dashboard.browser import screenshot
    screenshot("http://127.0.0.1:8765/dashboard/", "dashboard.png")
    ```
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from aco_langchain.errors import PlotError

#: Debian's chromium; ``$ACO_CHROMIUM`` points elsewhere.
DEFAULT_CHROMIUM = "/usr/bin/chromium"

#: Headless, offline, no first-run or background traffic; each launch gets a fresh profile.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium_path() -> Path:
    """The chromium binary to drive (``$ACO_CHROMIUM`` or Debian's)."""
    return Path(os.environ.get("ACO_CHROMIUM", DEFAULT_CHROMIUM))


def launch(playwright: Any, user_data_dir: str | os.PathLike[str], **kwargs: Any) -> Any:
    """A persistent chromium context on a fresh profile directory, with :data:`CHROMIUM_FLAGS`.

    Args:
        playwright: The object ``sync_playwright()`` gives.
        user_data_dir: An empty directory for the profile.
        **kwargs: More ``launch_persistent_context`` options (``viewport``...).

    Returns:
        A playwright ``BrowserContext``; close it when done.

    Raises:
        PlotError: The chromium binary is missing.
    """
    exe = chromium_path()
    if not exe.exists():
        raise PlotError(f"no chromium at {exe}: run `make browser` (Debian's chromium)")
    return playwright.chromium.launch_persistent_context(
        str(user_data_dir),
        executable_path=str(exe),
        headless=True,
        args=list(CHROMIUM_FLAGS),
        **kwargs,
    )


def screenshot(url: str, out: str | os.PathLike[str], *, timeout_s: float = 30.0) -> Path:
    """Load the dashboard at ``url``, wait until it has drawn, and write a full-page PNG.

    Args:
        url: The dashboard page (``.../dashboard/``).
        out: Where the PNG goes.
        timeout_s: How long the page may take to draw.

    Returns:
        The PNG's path.

    Raises:
        PlotError: playwright or chromium is missing, or the page did not draw.

    Example:
        ```python
        screenshot("http://127.0.0.1:8765/dashboard/", "docs/img/dashboard.png")
        ```
    """
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as err:
        raise PlotError("screenshots need playwright: pip install playwright") from err
    target = Path(out)
    with sync_playwright() as p, tempfile.TemporaryDirectory(prefix="aco-chromium-") as prof:
        ctx = launch(p, prof, viewport={"width": 1280, "height": 960})
        try:
            page = ctx.new_page()
            page.goto(url)
            page.wait_for_function("document.body.dataset.ready !== '0'", timeout=timeout_s * 1000)
            state = page.evaluate("document.body.dataset.ready")
            if state != "1":
                why = page.text_content("#source")
                raise PlotError(f"the dashboard at {url} did not draw: {why}")
            page.screenshot(path=str(target), full_page=True)
        finally:
            ctx.close()
    return target


__all__ = ["CHROMIUM_FLAGS", "DEFAULT_CHROMIUM", "chromium_path", "launch", "screenshot"]
