"""Adapter name -> factory. Adding a provider is one module and one line here."""

from __future__ import annotations

import httpx

from adapters.anthropic import AnthropicAdapter
from adapters.base import AdapterFactory, ChatAdapter, Endpoint
from adapters.gemini import GeminiAdapter
from adapters.ollama import OllamaAdapter
from adapters.openai_compat import OpenAICompatAdapter

ADAPTERS: dict[str, AdapterFactory] = {
    "openai_compat": OpenAICompatAdapter,
    "anthropic": AnthropicAdapter,
    "gemini": GeminiAdapter,
    "ollama": OllamaAdapter,
}


def build_adapter(name: str, endpoint: Endpoint, client: httpx.AsyncClient) -> ChatAdapter:
    try:
        factory = ADAPTERS[name]
    except KeyError:
        raise ValueError(f"unknown adapter {name!r}; known: {sorted(ADAPTERS)}") from None
    return factory(endpoint, client)
