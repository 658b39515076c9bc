"""The local tier's tool-call adapter: schema building, prompt rendering and parsing (no I/O)."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.messages.ai import AIMessageChunk
from langchain_core.tools import tool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, Field

from aco_langchain.errors import ACOError, LocalToolCallError
from aco_langchain.providers.local.tools import (
    MAX_ARRAY_ITEMS,
    MAX_STRING_CHARS,
    StreamParser,
    ToolCallSpec,
    normalize_tool_choice,
    render_history,
    response_format_schema,
)


class Unit(StrEnum):
    celsius = "celsius"
    fahrenheit = "fahrenheit"


class Address(BaseModel):
    """A postal address."""

    street: str
    city: str
    zip_code: str | None = None


class ShipOrder(BaseModel):
    """Ship an order to an address."""

    order_id: int = Field(description="The order number")
    address: Address
    items: list[str]
    express: bool = False


@tool
def get_weather(city: str, unit: Unit = Unit.celsius) -> str:
    """Get the current weather in a city."""
    return f"sunny in {city}"


@tool
def list_files() -> list[str]:
    """List the files in the project."""
    return ["a.py"]


TOOLS = [convert_to_openai_tool(t) for t in (get_weather, ShipOrder, list_files)]


def _branch(spec: ToolCallSpec, name: str) -> dict[str, Any]:
    branches = spec.schema.get("oneOf", [spec.schema])
    return next(b for b in branches if b["properties"].get("tool", {}).get("const") == name)


def test_auto_offers_every_tool_and_a_final_answer() -> None:
    spec = ToolCallSpec.build(TOOLS)
    branches = spec.schema["oneOf"]
    assert [b["properties"].get("tool", {}).get("const") for b in branches] == [
        "get_weather",
        "ShipOrder",
        "list_files",
        None,
    ]
    assert branches[-1]["required"] == ["final_answer"]
    assert all(b["required"] == ["tool", "arguments"] for b in branches[:-1])


@pytest.mark.parametrize("choice", ["any", "required", True, {"type": "any"}])
def test_any_forces_a_tool_call(choice: Any) -> None:
    if isinstance(choice, dict):
        with pytest.raises(LocalToolCallError, match="names no bound tool"):
            ToolCallSpec.build(TOOLS, choice)
        return
    spec = ToolCallSpec.build(TOOLS, choice)
    assert spec.choice == "required"
    assert all("final_answer" not in b["properties"] for b in spec.schema["oneOf"])


@pytest.mark.parametrize(
    "choice", ["ShipOrder", {"type": "function", "function": {"name": "ShipOrder"}}]
)
def test_a_name_forces_that_tool(choice: Any) -> None:
    spec = ToolCallSpec.build(TOOLS, choice)
    assert "oneOf" not in spec.schema
    assert spec.schema["properties"]["tool"] == {"const": "ShipOrder"}


def test_none_allows_only_a_final_answer() -> None:
    spec = ToolCallSpec.build(TOOLS, "none")
    assert spec.schema["required"] == ["final_answer"]
    # the grammar never lets the model answer with nothing (neither content nor a call)
    assert spec.schema["properties"]["final_answer"] == {"type": "string", "minLength": 1}
    with pytest.raises(LocalToolCallError, match="none of the bound tools"):
        spec.parse('{"tool": "list_files", "arguments": {}}')


def test_unknown_tool_choice_names_the_bound_tools() -> None:
    with pytest.raises(LocalToolCallError, match=r"'ShipOrder', 'get_weather', 'list_files'"):
        normalize_tool_choice("send_email", ["get_weather", "ShipOrder", "list_files"])
    assert issubclass(LocalToolCallError, ACOError)


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(LocalToolCallError, match="share a name"):
        ToolCallSpec.build([TOOLS[0], TOOLS[0]])


def test_nested_enum_and_optional_argument_schemas_survive() -> None:
    spec = ToolCallSpec.build(TOOLS)
    ship = _branch(spec, "ShipOrder")["properties"]["arguments"]
    # Nested model inlined by langchain, its own required list kept, optional field optional.
    address = ship["properties"]["address"]
    assert address["type"] == "object"
    assert set(address["required"]) == {"street", "city"}
    assert "zip_code" in address["properties"]
    assert set(ship["required"]) == {"order_id", "address", "items"}
    # Open-ended strings and arrays get a bound so every answer is finite.
    assert address["properties"]["street"]["maxLength"] == MAX_STRING_CHARS
    assert ship["properties"]["items"]["maxItems"] == MAX_ARRAY_ITEMS
    assert ship["properties"]["items"]["items"]["maxLength"] == MAX_STRING_CHARS
    weather = _branch(spec, "get_weather")["properties"]["arguments"]
    unit = weather["properties"]["unit"]
    enum = unit.get("enum") or next(s["enum"] for s in unit.get("allOf", []) if "enum" in s)
    assert enum == ["celsius", "fahrenheit"]
    assert "maxLength" not in unit  # an enum is already finite
    assert weather["required"] == ["city"]
    empty = _branch(spec, "list_files")["properties"]["arguments"]
    assert empty["type"] == "object" and empty["properties"] == {}


def test_caps_do_not_loosen_a_tools_own_limits() -> None:
    own = {
        "type": "function",
        "function": {
            "name": "t",
            "parameters": {
                "type": "object",
                "properties": {
                    "short": {"type": "string", "maxLength": 5},
                    "long": {"type": "string", "minLength": 500},
                    "ids": {"type": "array", "items": {"type": "integer"}, "maxItems": 2},
                },
            },
        },
    }
    args = ToolCallSpec.build([own], "t").schema["properties"]["arguments"]["properties"]
    assert args["short"]["maxLength"] == 5
    assert args["long"]["maxLength"] == 500
    assert args["ids"]["maxItems"] == 2


def test_parse_a_tool_call_into_tool_calls_with_an_id() -> None:
    spec = ToolCallSpec.build(TOOLS)
    out = spec.parse(
        json.dumps(
            {
                "tool": "ShipOrder",
                "arguments": {
                    "order_id": 7,
                    "address": {"street": "1 Main", "city": "Oslo"},
                    "items": ["x"],
                },
            }
        )
    )
    assert out.content == ""
    (call,) = out.tool_calls
    assert call["name"] == "ShipOrder" and call["type"] == "tool_call"
    assert call["args"] == {
        "order_id": 7,
        "address": {"street": "1 Main", "city": "Oslo"},
        "items": ["x"],
    }
    assert call["id"] and call["id"].startswith("call_")
    assert spec.parse('{"tool": "list_files", "arguments": {}}').tool_calls[0]["id"] != call["id"]


def test_parse_a_final_answer() -> None:
    out = ToolCallSpec.build(TOOLS).parse('{"final_answer": "It is sunny \\u2600"}')
    assert out.content == "It is sunny \u2600" and out.tool_calls == []


def test_a_forced_call_refuses_a_final_answer() -> None:
    with pytest.raises(LocalToolCallError, match="none of the bound tools"):
        ToolCallSpec.build(TOOLS, "any").parse('{"final_answer": "no"}')


def test_truncated_outputs() -> None:
    spec = ToolCallSpec.build(TOOLS)
    assert spec.parse('{"final_answer": "It is sun', truncated=True).content == "It is sun"
    with pytest.raises(LocalToolCallError, match="raise max_tokens"):
        spec.parse('{"tool": "get_weather", "arguments": {"ci', truncated=True)
    with pytest.raises(LocalToolCallError, match="json_schema"):
        spec.parse("Sure! The weather is nice.")


def test_render_history_puts_tool_turns_in_the_models_own_format() -> None:
    spec = ToolCallSpec.build(TOOLS)
    history = [
        SystemMessage("You are helpful."),
        HumanMessage("Weather in Paris?"),
        AIMessage(
            "",
            tool_calls=[
                {"name": "get_weather", "args": {"city": "Paris"}, "id": "c1", "type": "tool_call"}
            ],
        ),
        ToolMessage("sunny in Paris", tool_call_id="c1"),
    ]
    wire = spec.render(history)
    assert isinstance(wire[0], SystemMessage)
    assert wire[0].content.startswith("You are helpful.")
    assert "- get_weather: Get the current weather in a city." in wire[0].content
    assert "unit (string one of celsius/fahrenheit, optional)" in wire[0].content
    assert json.loads(str(wire[2].content)) == {
        "tool": "get_weather",
        "arguments": {"city": "Paris"},
    }
    assert (
        isinstance(wire[3], HumanMessage)
        and wire[3].content == "Result of get_weather: sunny in Paris"
    )
    assert history[2].tool_calls  # the caller's messages are untouched
    without_system = render_history([HumanMessage("hi")], "INSTR")
    assert [m.type for m in without_system] == ["system", "human"]
    assert render_history([HumanMessage("hi")], None)[0].type == "human"


def test_response_format_schemas() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    assert (
        response_format_schema(
            {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
        )
        == schema
    )
    assert response_format_schema({"type": "json_object"}) == {"type": "object"}
    assert response_format_schema({"type": "text"}) is None
    assert response_format_schema(None) is None
    assert response_format_schema(Address)["required"] == ["street", "city"]  # type: ignore[index]
    with pytest.raises(LocalToolCallError, match="response_format"):
        response_format_schema({"type": "xml"})


def _stream(spec: ToolCallSpec, pieces: list[str]) -> tuple[str, AIMessageChunk]:
    parser = StreamParser(spec)
    text = ""
    merged = AIMessageChunk(content="")
    for i, piece in enumerate(pieces):
        t, chunks = parser.feed(piece)
        if i == len(pieces) - 1:
            t2, more = parser.finish()
            t, chunks = t + t2, chunks + more
        text += t
        merged = merged + AIMessageChunk(content=t, tool_call_chunks=chunks)  # type: ignore[assignment]
    return text, merged


def test_stream_a_tool_call_as_tool_call_chunks() -> None:
    raw = (
        '{"tool": "ShipOrder", "arguments": '
        '{"order_id": 7, "address": {"street": "a}", "city": "b"}, "items": []}}'
    )
    for size in (1, 3, 7, len(raw)):
        pieces = [raw[i : i + size] for i in range(0, len(raw), size)]
        text, merged = _stream(ToolCallSpec.build(TOOLS), pieces)
        assert text == ""
        (call,) = merged.tool_calls
        assert call["name"] == "ShipOrder"
        assert call["args"] == {
            "order_id": 7,
            "address": {"street": "a}", "city": "b"},
            "items": [],
        }
        assert call["id"] and call["id"].startswith("call_")


def test_stream_a_final_answer_as_text() -> None:
    raw = '{"final_answer": "Line one\\nsays \\"hi\\" \\u00e9."}'
    for size in (1, 2, 5):
        pieces = [raw[i : i + size] for i in range(0, len(raw), size)]
        text, merged = _stream(ToolCallSpec.build(TOOLS), pieces)
        assert text == 'Line one\nsays "hi" \u00e9.'
        assert merged.tool_calls == []


def test_repeats_answered_call_spots_the_same_call_with_its_result() -> None:
    from aco_langchain.providers.local.tools import repeats_answered_call

    asked = AIMessage(
        "", tool_calls=[{"name": "add", "args": {"a": 1, "b": 2}, "id": "c1", "type": "tool_call"}]
    )
    history = [HumanMessage("1+2?"), asked, ToolMessage("3", tool_call_id="c1")]
    same = {"name": "add", "args": {"b": 2, "a": 1}, "id": "c2", "type": "tool_call"}
    other = {"name": "add", "args": {"a": 1, "b": 3}, "id": "c3", "type": "tool_call"}
    assert repeats_answered_call(history, same)  # type: ignore[arg-type]
    assert not repeats_answered_call(history, other)  # type: ignore[arg-type]
    assert not repeats_answered_call(history[:2], same)  # asked but not answered yet
