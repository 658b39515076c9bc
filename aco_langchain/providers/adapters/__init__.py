"""One small adapter per provider family (see ``aco_langchain.providers.registry``).

``base``: the adapter protocol, the generic LangChain-package adapter (Anthropic, Groq,
Mistral, Bedrock) and the passed-in instance; ``openai``: OpenAI, OpenAI-compatible servers
and the embedded llama.cpp server; ``ollama``; ``google``: Gemini.
"""
