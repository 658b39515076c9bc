"""The cost-quality frontier of a router against single models, the zero router and the oracle.

``frontier_series`` turns the report of ``aco eval --json`` (``evaluate.report``) into the
series to draw; ``frontier_figure`` draws them. The router's operating points come out of
the knob sweep in knob order with the mixed points appended after the plain grid, so they
are sorted by cost here: drawn in report order, the line ran from the cheapest point back
to the costliest one (the stray segment that joined the frontier's two ends).

Example:
    ```python
    import json, subprocess
    rep = json.loads(subprocess.run(["aco", "eval", "--data", "mbpp_train.csv", "--json"],
                                    capture_output=True, text=True).stdout)
    s = frontier_series(rep, quality_level=0.95)
    s.operating_point      # (mean cost, accuracy) chosen for 95% of the best model
    frontier_figure(rep).savefig("frontier.png")
    ```
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aco_langchain.routing.training.evaluate import Point, cheapest_at, upper_hull
from aco_langchain.viz.figure import new_figure


@dataclass(frozen=True)
class FrontierSeries:
    """What a frontier plot draws, every point as (mean cost per query USD, accuracy).

    Attributes:
        router: every operating point of the router's knob sweep, sorted by cost.
        router_hull: the non-decreasing concave envelope of ``router`` (what AIQ integrates).
        singles: each single model's point, by model name.
        zero_hull: the envelope of the single models (the zero router).
        oracle: the cheapest correct model per prompt.
        quality_level: the share of the best single model's accuracy asked for.
        operating_point: the cheapest router point reaching that share (None: none does).
        operating_knob: the knob (lambda) and mix of that point, when there is one.
    """

    router: list[Point]
    router_hull: list[Point]
    singles: dict[str, Point]
    zero_hull: list[Point]
    oracle: Point
    quality_level: float
    operating_point: Point | None
    operating_knob: tuple[float, float] | None


def frontier_series(report: Mapping[str, Any], quality_level: float = 0.95) -> FrontierSeries:
    """The series of a frontier plot from an ``aco eval`` report (pure).

    Args:
        report: The dict ``aco eval --json`` prints (``evaluate.report``'s output).
        quality_level: Target accuracy as a share of the best single model's (0-1].

    Returns:
        The series, router points sorted by cost.

    Raises:
        ValueError: ``quality_level`` is outside (0, 1] or the report has no router curve.

    Example:
        ```python
        s = frontier_series(rep, 0.9)
        s.router[0], s.router[-1]      # cheapest and costliest operating points
        ```
    """
    if not 0.0 < quality_level <= 1.0:
        raise ValueError(f"quality_level must be in (0, 1], got {quality_level}")
    curve = report["router"]["curve"]
    if not curve:
        raise ValueError("the report has no router curve (report['router']['curve'] is empty)")
    ordered = sorted(curve, key=lambda c: (c["mean_cost"], c["accuracy"]))
    router = [(float(c["mean_cost"]), float(c["accuracy"])) for c in ordered]
    singles = {
        name: (float(m["mean_cost"]), float(m["accuracy"])) for name, m in report["models"].items()
    }
    idx = cheapest_at(router, quality_level * float(report["best_single"]["accuracy"]))
    o = report["oracle"]
    return FrontierSeries(
        router=router,
        router_hull=upper_hull(router),
        singles=singles,
        zero_hull=upper_hull(list(singles.values())),
        oracle=(float(o["mean_cost"]), float(o["accuracy"])),
        quality_level=quality_level,
        operating_point=None if idx is None else router[idx],
        operating_knob=None
        if idx is None
        else (float(ordered[idx]["knob"]), float(ordered[idx].get("mix", 0.0))),
    )


def frontier_figure(
    report: Mapping[str, Any], quality_level: float = 0.95, title: str | None = None
) -> Any:
    """Draw the frontier: router points and envelope, single models, zero router, oracle.

    Args:
        report: The dict ``aco eval --json`` prints.
        quality_level: Target share of the best single model's accuracy (marked on the plot).
        title: Figure title (default: the report's data name and prompt count).

    Returns:
        A matplotlib ``Figure``.

    Raises:
        PlotError: matplotlib is not installed.

    Example:
        ```python
        save_png(frontier_figure(rep), "frontier.png")
        ```
    """
    s = frontier_series(report, quality_level)
    fig = new_figure(7.5, 4.8)
    ax = fig.add_subplot()
    ax.plot(*zip(*s.router, strict=True), ".", ms=3, color="tab:blue", alpha=0.35)
    ax.plot(*zip(*s.router_hull, strict=True), "-", color="tab:blue", lw=2, label="learned router")
    ax.plot(*zip(*s.zero_hull, strict=True), "--", color="tab:gray", label="zero router (hull)")
    for name, (c, a) in s.singles.items():
        ax.scatter([c], [a], marker="x", color="tab:red", zorder=3)
        ax.annotate(
            name.split("/")[-1], (c, a), fontsize=6, xytext=(3, -8), textcoords="offset points"
        )
    ax.scatter(
        [s.oracle[0]],
        [s.oracle[1]],
        marker="*",
        s=120,
        color="gold",
        ec="k",
        zorder=4,
        label="oracle",
    )
    if s.operating_point is not None:
        c, a = s.operating_point
        ax.scatter(
            [c],
            [a],
            s=90,
            facecolors="none",
            edgecolors="k",
            lw=1.5,
            zorder=5,
            label=f"operating point ({quality_level:.0%} of best: \\${c:.2g}, {a:.3f})",
        )
        ax.axhline(
            quality_level * float(report["best_single"]["accuracy"]), color="k", lw=0.6, ls=":"
        )
    ax.set_xscale("log")
    ax.set_xlabel("mean cost per query (USD, log scale)")
    ax.set_ylabel("accuracy")
    n = report.get("n_prompts")
    ax.set_title(
        title or f"cost-quality frontier: {report.get('data', 'data')} ({n} prompts)", fontsize=10
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="lower right")
    return fig


__all__ = ["FrontierSeries", "frontier_figure", "frontier_series"]
