"""``ChatOpenAI`` for the OpenAI-family tiers the router builds: a plain chat completion's
answer is turned into a ``ChatResult`` on the event loop, not on a worker thread.

langchain-openai's ``_agenerate`` hands that last step (``_create_chat_result``: a few hundred
microseconds of Python) to the loop's default executor. That is a thread hand-off per call,
and a second thread contending with the event loop for the GIL: in ``aco serve`` at 16
requests in flight it cost ~8% of the throughput (``benchmarks/server.py``, interleaved A/B).
Here the same steps run inline. Everything else is ChatOpenAI's own (payload, error mapping,
gateway metadata); calls with ``response_format``, the Responses API or response headers go
to ChatOpenAI's ``_agenerate`` unchanged. Imported only when such a tier is built.

Example:
    ```python
    from aco_langchain.providers.openai_chat import tier_chat_class

    cls = tier_chat_class()            # TierChatOpenAI (ChatOpenAI if langchain-openai moved)
    llm = cls(model="gpt-4.1-mini", max_retries=0)
    ```
"""

from __future__ import annotations

import logging
from typing import Any

import openai
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult
from langchain_openai import ChatOpenAI
from langchain_openai.chat_models import base as _lc

logger = logging.getLogger(__name__)

#: The langchain-openai helpers the inline path calls (the same ones its ``_agenerate`` does).
_HELPERS = ("_handle_openai_bad_request", "_handle_openai_api_error", "_add_gateway_metadata")


class TierChatOpenAI(ChatOpenAI):
    """ChatOpenAI whose async chat-completion answers are parsed on the calling event loop.

    Example:
        ```python
        llm = TierChatOpenAI(model="gpt-4.1-mini", base_url=url, api_key="...", max_retries=0)
        await llm.ainvoke("hi")      # the same answer ChatOpenAI gives, without a thread hop
        ```
    """

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        payload = self._get_request_payload(messages, stop=stop, **kwargs)
        if (
            "response_format" in payload
            or self.include_response_headers
            or self._use_responses_api(payload)
        ):
            return await super()._agenerate(messages, stop=stop, run_manager=run_manager, **kwargs)
        raw_response = None
        try:
            raw_response = await self.async_client.with_raw_response.create(**payload)
            response = raw_response.parse()
        except openai.BadRequestError as e:
            _lc._handle_openai_bad_request(e)  # raises langchain-openai's error
            raise  # pragma: no cover - the helper always raises
        except openai.APIError as e:
            _lc._handle_openai_api_error(e)  # raises langchain-openai's error
            raise  # pragma: no cover - the helper always raises
        except Exception as e:
            if raw_response is not None and hasattr(raw_response, "http_response"):
                e.response = raw_response.http_response  # type: ignore[attr-defined]
            raise
        generation_info: dict[str, Any] = {}
        _lc._add_gateway_metadata(generation_info, raw_response)
        return self._create_chat_result(response, generation_info)


def tier_chat_class() -> type[ChatOpenAI]:
    """The class to build OpenAI-family tiers with: :class:`TierChatOpenAI`, or ChatOpenAI
    itself (logged) when this langchain-openai lacks a helper the inline path calls.

    Returns:
        A ChatOpenAI class.
    """
    missing = [name for name in _HELPERS if not callable(getattr(_lc, name, None))]
    if missing:
        logger.info(
            "langchain-openai has no %s: tiers use ChatOpenAI as it is (answers parsed on "
            "a worker thread)",
            ", ".join(missing),
        )
        return ChatOpenAI
    return TierChatOpenAI


__all__ = ["TierChatOpenAI", "tier_chat_class"]
