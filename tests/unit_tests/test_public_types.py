"""Type checkers see the real public API: no exported name and no public factory is ``Any``.

mypy runs on a small file that ``reveal_type``s every name in ``aco_langchain.__all__`` and
the results of the public factories (``create_aco_agent``, ``ACOMiddleware().model``...).
The lazy ``__getattr__`` exports alone would make all of them ``Any``.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

import aco_langchain

mypy_api = pytest.importorskip("mypy.api")

ROOT = Path(__file__).resolve().parents[2]


def _reveal_file() -> str:
    names = [n for n in aco_langchain.__all__ if n != "__version__"]
    lines = ["import aco_langchain", *(f"reveal_type(aco_langchain.{n})" for n in names)]
    lines += textwrap.dedent(
        """
        from aco_langchain.integrations.langgraph import create_aco_agent, create_strategy_graph
        from aco_langchain.integrations.middleware import ACOMiddleware
        reveal_type(create_aco_agent())
        reveal_type(create_strategy_graph())
        reveal_type(ACOMiddleware().model)
        reveal_type(aco_langchain.ACORouterChatModel().bind_tools([]))
        reveal_type(aco_langchain.ACORouterChatModel().spent())
        """
    ).splitlines()
    return "\n".join(lines) + "\n"


def test_reveal_type_of_the_public_api_is_never_any(tmp_path: Path) -> None:
    src = tmp_path / "reveal_public_api.py"
    src.write_text(_reveal_file())
    out, err, _status = mypy_api.run(
        [
            str(src),
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(ROOT / ".mypy_cache"),
            "--follow-imports",
            "silent",
            "--no-error-summary",
        ]
    )
    revealed = re.findall(r'Revealed type is "(.*)"', out)
    assert len(revealed) == len(aco_langchain.__all__) - 1 + 5, out + err
    anys = [
        line
        for line in out.splitlines()
        if 'Revealed type is "Any"' in line or re.search(r'-> Any"?$', line)
    ]
    assert not anys, "\n".join(anys)


@pytest.mark.parametrize("name", [n for n in aco_langchain.__all__ if n != "__version__"])
def test_every_exported_name_has_a_google_style_docstring(name: str) -> None:
    import inspect

    obj = getattr(aco_langchain, name)
    doc = inspect.getdoc(obj) or ""
    assert "Example:" in doc and "```python" in doc, f"{name}: no Example block"
    if inspect.isfunction(obj):
        assert "Args:" in doc and "Returns:" in doc, f"{name}: no Args/Returns"
