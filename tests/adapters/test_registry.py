"""The registry builds each adapter by name and names the known ones on a typo."""

from __future__ import annotations

import httpx
import pytest

from adapters.anthropic import AnthropicAdapter
from adapters.gemini import GeminiAdapter
from adapters.ollama import OllamaAdapter
from adapters.openai_compat import OpenAICompatAdapter
from adapters.registry import ADAPTERS, build_adapter
from tests.adapters.wire import endpoint


def _unused(request: httpx.Request) -> httpx.Response:
    raise AssertionError("building an adapter must not send anything")


@pytest.mark.parametrize(
    ("name", "cls"),
    [("openai_compat", OpenAICompatAdapter), ("anthropic", AnthropicAdapter),
     ("gemini", GeminiAdapter), ("ollama", OllamaAdapter)],
)  # fmt: skip
async def test_builds_each_adapter(name: str, cls: type) -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(_unused)) as client:
        adapter = build_adapter(name, endpoint("https://example.com", "m"), client)
        assert isinstance(adapter, cls)
        assert callable(adapter.complete) and callable(adapter.stream)
        await adapter.aclose()


def test_registry_is_exactly_the_four_wire_formats() -> None:
    assert sorted(ADAPTERS) == ["anthropic", "gemini", "ollama", "openai_compat"]


async def test_unknown_name_lists_the_known_ones() -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(_unused)) as client:
        with pytest.raises(ValueError, match="unknown adapter 'openai'") as raised:
            build_adapter("openai", endpoint("https://example.com", "m"), client)
    assert "anthropic, gemini, ollama, openai_compat" in str(raised.value)
