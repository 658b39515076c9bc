"""graphs/ modules and langgraph.json: importable offline, graphs built lazily."""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import json
import socket
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_deploy_{path.stem}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access while building a graph")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_langgraph_json_points_at_graph_factories(no_network: None) -> None:
    # `langgraph dev` looks names up in the module's namespace (a PEP 562 lazy attribute is
    # not found), so langgraph.json names the zero-argument factories that build the graphs;
    # async ones, which build on a worker thread (the server calls factories on its loop).
    spec = json.loads((ROOT / "langgraph.json").read_text())
    assert spec["dependencies"] == ["."]
    for name, ref in spec["graphs"].items():
        file, attr = ref.split(":")
        module = _load(ROOT / file)
        assert attr in vars(module), f"{name}: {attr} is not a real module attribute"
        factory = getattr(module, attr)
        assert inspect.iscoroutinefunction(factory), f"{name}: {attr} would build on the loop"
        graph = asyncio.run(factory())
        assert hasattr(graph, "invoke") and hasattr(graph, "get_graph"), name
        assert graph.get_graph().nodes


def test_import_builds_nothing() -> None:
    module = _load(ROOT / "graphs" / "aco_agent.py")
    assert module.build_graph.cache_info().currsize == 0
    strategies = _load(ROOT / "graphs" / "strategies.py")
    assert strategies.build_graph.cache_info().currsize == 0


def test_deployed_agent_tools() -> None:
    module = _load(ROOT / "graphs" / "aco_agent.py")
    assert module.calculator.invoke({"expression": "(2 + 3) * 4"}) == "20"
    assert module.word_count.invoke({"text": "a b c"}) == 3
    with pytest.raises(ValueError, match="only numbers"):
        module.calculator.invoke({"expression": "__import__('os')"})
    with pytest.raises(AttributeError):
        _ = module.nope
