"""Figures without a display: build with matplotlib's object API, write PNGs atomically.

Example:
    ```python
    from aco_langchain.viz.figure import new_figure, save_png

    fig = new_figure(6, 4)
    fig.add_subplot().plot([0, 1], [0, 1])
    save_png(fig, "line.png")
    ```
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from aco_langchain.errors import PlotError

logger = logging.getLogger(__name__)


def new_figure(width: float, height: float) -> Any:
    """A matplotlib ``Figure`` not attached to any GUI backend (safe headless and in threads).

    Args:
        width: Width in inches.
        height: Height in inches.

    Returns:
        A ``matplotlib.figure.Figure`` (typed ``Any``: matplotlib is an optional extra).

    Raises:
        PlotError: matplotlib is not installed.

    Example:
        ```python
        fig = new_figure(7, 4.5)
        ax = fig.add_subplot()
        ```
    """
    try:
        from matplotlib.figure import Figure
    except ImportError as err:
        raise PlotError(
            "plots need matplotlib: pip install 'aco-langchain[notebooks]' (or matplotlib)"
        ) from err
    return Figure(figsize=(width, height), layout="constrained")


def save_png(fig: Any, path: str | os.PathLike[str], *, dpi: int = 120) -> Path:
    """Write ``fig`` as a PNG at ``path``: to a temporary file first, then renamed into place.

    A failed write leaves no half-written PNG behind.

    Args:
        fig: A matplotlib ``Figure``.
        path: Where the PNG goes (its directory must exist).
        dpi: Resolution.

    Returns:
        The path written.

    Raises:
        PlotError: The directory does not exist or cannot be written.

    Example:
        ```python
        save_png(fig, "docs/img/frontier.png")
        ```
    """
    target = Path(path)
    if not target.parent.is_dir():
        raise PlotError(f"{target}: the directory {target.parent} does not exist; create it first")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".plot-", suffix=".png", dir=target.parent)
    except OSError as err:
        raise PlotError(f"{target}: cannot write the plot ({err.strerror})") from err
    try:
        with os.fdopen(fd, "wb") as fh:
            fig.savefig(fh, format="png", dpi=dpi)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would make the PNG private
        os.replace(tmp, target)
    except OSError as err:
        raise PlotError(f"{target}: cannot write the plot ({err.strerror})") from err
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    logger.info("wrote plot %s", target)
    return target


__all__ = ["new_figure", "save_png"]
