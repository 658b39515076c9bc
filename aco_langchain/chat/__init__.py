"""The chat model users drop in wherever an ``llm`` goes (:class:`ACORouterChatModel`),
with its cascade (answer cheap, escalate on low confidence) and message helpers."""
