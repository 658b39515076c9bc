"""Plots of what the router and the agents did: the cost-quality frontier and trace stats.

Each plot is two layers: a pure function that turns a report into the series to draw
(tested without matplotlib), and a figure builder over it. Figures are built with
``matplotlib.figure.Figure`` directly (no pyplot, no display, no global backend), so the
CLI writes PNGs headless and a notebook shows the same figure inline.

Example:
    ```python
    from aco_langchain.viz import frontier_figure, save_png

    fig = frontier_figure(report)          # report: what ``aco eval --json`` prints
    save_png(fig, "frontier.png")
    ```
"""

from __future__ import annotations

from aco_langchain.viz.figure import new_figure, save_png
from aco_langchain.viz.frontier import FrontierSeries, frontier_figure, frontier_series
from aco_langchain.viz.stats import TraceSeries, stats_figure, trace_series

__all__ = [
    "FrontierSeries",
    "TraceSeries",
    "frontier_figure",
    "frontier_series",
    "new_figure",
    "save_png",
    "stats_figure",
    "trace_series",
]
