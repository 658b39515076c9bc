"""Structured output through a routed chat model: tool calling, JSON schema or JSON mode,
parsed into the schema (a pydantic class or a JSON schema dict).

Example:
    ```python
    structured_output(llm, Answer).invoke("What is 2+2?")   # Answer(value=4)
    ```
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.output_parsers.openai_tools import (
    JsonOutputKeyToolsParser,
    PydanticToolsParser,
)
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass

Method = Literal["function_calling", "json_schema", "json_mode"]


def structured_output(
    model: BaseChatModel,
    schema: dict[str, Any] | type,
    *,
    include_raw: bool = False,
    method: Method = "function_calling",
    strict: bool | None = None,
) -> Runnable[LanguageModelInput, dict[str, Any] | Any]:
    """``model`` bound to answer in ``schema``, with the parser that reads the answer.

    Args:
        model: the chat model (its ``bind_tools``/``bind`` bind the schema per call).
        schema: a pydantic class or a JSON schema / OpenAI tool dict.
        include_raw: return ``{"raw", "parsed", "parsing_error"}`` instead of the parsed value.
        method: tool calling, a JSON schema response format, or JSON mode.
        strict: ask the provider for strict schema adherence.

    Returns:
        A runnable: messages in, the parsed answer (or the raw/parsed dict) out.

    Raises:
        ValueError: an unknown ``method``.
    """
    is_model = isinstance(schema, type) and is_basemodel_subclass(schema)
    tool = convert_to_openai_tool(schema, strict=strict)
    name = tool["function"]["name"]
    # What langchain_core's own with_structured_output binds: callbacks (LangSmith) see the
    # schema and method in on_chat_model_start's options; the model pops it before the call.
    traced = {"ls_structured_output_format": {"kwargs": {"method": method}, "schema": schema}}
    llm: Runnable[Any, Any]
    parser: Runnable[Any, Any]
    if method == "function_calling":
        llm = model.bind_tools([schema], tool_choice=name, strict=strict, **traced)
        parser = (
            PydanticToolsParser(tools=[schema], first_tool_only=True)
            if is_model
            else JsonOutputKeyToolsParser(key_name=name, first_tool_only=True)
        )
    elif method == "json_schema":
        fmt: dict[str, Any] = {
            "type": "json_schema",
            "json_schema": {
                "name": name,
                "schema": tool["function"]["parameters"],
                **({"strict": strict} if strict is not None else {}),
            },
        }
        llm = model.bind(response_format=fmt, **traced)
        parser = PydanticOutputParser(pydantic_object=schema) if is_model else JsonOutputParser()
    elif method == "json_mode":
        llm = model.bind(response_format={"type": "json_object"}, **traced)
        parser = PydanticOutputParser(pydantic_object=schema) if is_model else JsonOutputParser()
    else:
        raise ValueError(
            f"method={method!r} is not supported: use function_calling, json_schema or json_mode"
        )
    if not include_raw:
        return llm | parser
    parser_with_fallback = RunnablePassthrough.assign(
        parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
    ).with_fallbacks(
        [RunnablePassthrough.assign(parsed=lambda _: None)], exception_key="parsing_error"
    )
    return RunnableMap(raw=llm) | parser_with_fallback


__all__ = ["Method", "structured_output"]
