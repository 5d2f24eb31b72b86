"""Adapter name -> factory: the catalog's ``adapter:`` field picks a row here.

Adding a provider is one module and one line. OpenAI-compatible servers need neither: they are
catalog rows for ``openai_compat`` with their own base URL, key and headers.
"""

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


def features(name: str) -> frozenset[str]:
    """The Chat Completions fields adapter ``name``'s wire format carries."""
    found: frozenset[str] = getattr(ADAPTERS[name], "FEATURES", frozenset())
    return found


def build_adapter(name: str, endpoint: Endpoint, client: httpx.AsyncClient) -> ChatAdapter:
    """The adapter called ``name`` for one endpoint; ValueError names the known adapters."""
    try:
        factory = ADAPTERS[name]
    except KeyError:
        known = ", ".join(sorted(ADAPTERS))
        raise ValueError(f"unknown adapter {name!r}; known adapters: {known}") from None
    return factory(endpoint, client)
