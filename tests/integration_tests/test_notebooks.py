"""The notebooks, executed for real: a fresh Jupyter kernel per notebook (nbclient), every cell
top to bottom, then assertions on what they computed and drew.

Each notebook ends with a cell that prints one JSON ``summary``; the tests read it from the
executed notebook's outputs and check the figures a user would look at. Notebooks 01 and 03
use the real local tier (the ``local_server`` fixture starts it; the notebooks reuse it).
Notebook 02 runs on the routing data beside the repo (``../shared/data/routing``, or
``$ACO_ROUTING_DATA``) and, without it, on the replay sample shipped in the package.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

REPO = Path(__file__).resolve().parents[2]
NB_DIR = REPO / "notebooks"
NOTEBOOKS = sorted(NB_DIR.glob("*.ipynb"))
ROUTING_DATA = Path(os.environ.get("ACO_ROUTING_DATA", REPO.parent / "shared" / "data" / "routing"))


def execute(name: str) -> Any:
    """Run ``notebooks/<name>`` in a new kernel with cwd = notebooks/; the executed notebook."""
    nb = nbformat.read(NB_DIR / name, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=300,  # per cell: a hang fails the test instead of blocking CI
        kernel_name="python3",
        resources={"metadata": {"path": str(NB_DIR)}},
    )
    client.execute()
    return nb


def outputs(nb: Any) -> list[dict[str, Any]]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def summary(nb: Any) -> dict[str, Any]:
    """The JSON printed by the last code cell."""
    last = [c for c in nb.cells if c.cell_type == "code"][-1]
    text = "".join(o.get("text", "") for o in last.outputs if o.get("name") == "stdout")
    return json.loads(text[text.index("{") :])


def png_count(nb: Any) -> int:
    return sum("image/png" in o.get("data", {}) for o in outputs(nb))


def test_the_three_notebooks_are_there_and_stored_without_outputs() -> None:
    names = [p.name for p in NOTEBOOKS]
    assert names == [
        "01_quickstart.ipynb",
        "02_cost_quality_frontier.ipynb",
        "03_agent_traces.ipynb",
    ]
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [], f"{path.name}: strip outputs before committing"
                assert cell.execution_count is None, f"{path.name}: strip execution counts"


def test_02_frontier_on_the_shipped_sample_without_the_routing_data(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pytest.importorskip("sklearn")
    monkeypatch.setenv("ACO_ROUTING_DATA", str(tmp_path / "none"))  # a clone on its own
    nb = execute("02_cost_quality_frontier.ipynb")
    s = summary(nb)
    assert s["data"] == "shipped replay sample"
    assert s["held_out_prompts"] >= 50 and s["train_prompts"] >= 200
    assert s["router_aiq"] < s["oracle_aiq"] and s["op95_cost"] < s["best_single_cost"]
    assert png_count(nb) == 1


def test_02_frontier_on_held_out_prompts() -> None:
    if not (ROUTING_DATA / "routerbench").is_dir():
        pytest.skip(f"routing data not found at {ROUTING_DATA}: set ACO_ROUTING_DATA")
    pytest.importorskip("sklearn")
    nb = execute("02_cost_quality_frontier.ipynb")
    s = summary(nb)
    assert s["held_out_prompts"] > 400 and s["train_prompts"] > 1700
    # the learned router beats the best mix of single models on prompts it never saw,
    # and stays below the oracle
    assert s["zero_router_aiq"] + 0.01 < s["router_aiq"] < s["oracle_aiq"]
    # the knob chosen on the training folds for 95% keeps most of that quality held out,
    # at a fraction of the best model's cost
    assert s["op95_accuracy"] >= 0.9 * s["best_single_accuracy"]
    assert s["op95_cost"] < 0.6 * s["best_single_cost"]
    assert s["cost_reduction_at_95"] > 0.3
    assert png_count(nb) == 1


@pytest.mark.local_model
def test_01_quickstart_on_the_local_tier(local_server: Any) -> None:
    nb = execute("01_quickstart.ipynb")
    s = summary(nb)
    assert len(s["calls"]) == 4
    for c in s["calls"]:
        # no keys: every call is answered by the real local tier, for $0, and says why
        assert c["tier"] == 1 and c["cost_usd"] == 0.0 and c["answered"]
        assert c["tier5_cost_usd"] > 0
        if c["wanted_tier"] > 1:
            assert f"tier {c['wanted_tier']} unavailable" in c["reason"]
            assert c["wanted_cost_usd"] > 0
    assert any(c["wanted_tier"] >= 4 for c in s["calls"])  # the GDPR review wants a big tier
    capped, crit = s["option_calls"]
    assert "max_cost_usd 1e-06 -> tier<=1" in capped["reason"] and capped["tier"] == 1
    # a risk floor is not broken silently: refused, naming the floor and the fix
    assert "risk floor" in crit["raised"] and "allow_degrade" in crit["raised"]
    assert s["agent_steps"] and all(st["tier"] == 1 for st in s["agent_steps"])
    # the local tier called the tool and the gate let it run (priced at $0)
    assert {"name": "word_count", "success": True} in s["agent_tools"]
    assert s["agent_answer"]
    assert s["spent_usd"] == 0.0 < s["tier5_usd"]
    assert png_count(nb) == 1


@pytest.mark.local_model
def test_03_agent_traces_and_aco_stats(local_server: Any) -> None:
    nb = execute("03_agent_traces.ipynb")
    s = summary(nb)
    assert s["runs"] == 4
    assert len(s["doom_reasons"]) == s["outcomes"].count("doomed")
    # the command line and Python report the same numbers for the same trace file
    assert s["cli"] == s["report"]
    r = s["report"]
    # success counts only when observed (a verifier's verdict, an aco_outcome event, a report):
    # the rate is over the runs with an outcome, and unknown (None) when no run has one
    assert r["runs_with_outcome"] + r["runs_without_outcome"] == 4
    observed = r["runs_with_outcome"]
    assert r["success_rate"] == (round(r["successes"] / observed, 4) if observed else None)
    assert s["series_total_cost"] == pytest.approx(r["total_cost"], abs=1e-6)  # report: 6 dp
    assert sum(s["calls_by_tier"].values()) == s["model_calls"] == r["model_calls"] > 0
    # no keys: the real local tier (tier 1, $0) answered every step
    assert set(s["calls_by_tier"]) == {"1"} and r["total_cost"] == 0.0
    assert s["stats_png_bytes"] > 10_000  # aco stats --plot wrote a real figure
    assert png_count(nb) == 1
