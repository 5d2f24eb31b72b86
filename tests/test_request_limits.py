"""What one request may carry: caps on messages, text, parts, tools and output, as a user sees them.

Each cap is a setting (``SWITCHBOARD_MAX_*``); a request over one gets a 400 (413 for the text's
sheer size) in the OpenAI error envelope that names the limit and the setting, on every
endpoint that takes a chat request. Requests within the caps are served as before. Bodies
that are not valid Unicode JSON (a lone surrogate escape) get a 400, never a 500.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.inprocess import switchboard

PHOTO = "data:image/jpeg;base64,/9j/4AAQSkZJRg=="
LIMITS = {
    "max_messages": 4,
    "max_text_chars": 1000,
    "max_content_parts": 6,
    "max_image_parts": 1,
    "max_tools": 2,
    "max_output_tokens": 100,
}
ENDPOINTS = ["/v1/chat/completions", "/v1/route"]


@pytest.fixture(scope="module")
async def client(
    fake: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    async with switchboard(fake, tmp_path_factory.mktemp("limits"), **LIMITS) as c:
        yield c


def _body(**extra: Any) -> dict[str, Any]:
    return {"model": "auto", "messages": [{"role": "user", "content": "Say hello."}], **extra}


def _tool(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}


def _error(response: httpx.Response, status: int, param: str, setting: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert setting in error["message"], error["message"]


@pytest.mark.parametrize("path", ENDPOINTS)
async def test_within_the_limits_a_request_is_served(client: httpx.AsyncClient, path: str) -> None:
    messages = [{"role": "user", "content": "x" * 300}, {"role": "assistant", "content": "ok"},
                {"role": "user", "content": [{"type": "text", "text": "what is this?"},
                                             {"type": "image_url", "image_url": {"url": PHOTO}}]}]  # fmt: skip
    body = _body(messages=messages, max_tokens=100, tools=[_tool("a"), _tool("b")])
    response = await client.post(path, json=body)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("path", ENDPOINTS)
async def test_too_many_messages(client: httpx.AsyncClient, path: str) -> None:
    body = _body(messages=[{"role": "user", "content": "hi"}] * 5)
    _error(await client.post(path, json=body), 400, "messages", "SWITCHBOARD_MAX_MESSAGES")


@pytest.mark.parametrize("path", ENDPOINTS)
async def test_too_much_text_is_413(client: httpx.AsyncClient, path: str) -> None:
    body = _body(messages=[{"role": "system", "content": "s" * 600},
                           {"role": "user", "content": [{"type": "text", "text": "u" * 500}]}])  # fmt: skip
    _error(await client.post(path, json=body), 413, "messages", "SWITCHBOARD_MAX_TEXT_CHARS")


@pytest.mark.parametrize("path", ENDPOINTS)
async def test_too_many_content_parts(client: httpx.AsyncClient, path: str) -> None:
    parts = [{"type": "text", "text": "a"}] * 7
    body = _body(messages=[{"role": "user", "content": parts}])
    _error(await client.post(path, json=body), 400, "messages", "SWITCHBOARD_MAX_CONTENT_PARTS")


@pytest.mark.parametrize("path", ENDPOINTS)
async def test_too_many_images(client: httpx.AsyncClient, path: str) -> None:
    image = {"type": "image_url", "image_url": {"url": PHOTO}}
    body = _body(messages=[{"role": "user", "content": [{"type": "text", "text": "a"}, image]},
                           {"role": "user", "content": [image]}])  # fmt: skip
    _error(await client.post(path, json=body), 400, "messages", "SWITCHBOARD_MAX_IMAGE_PARTS")


@pytest.mark.parametrize("path", ENDPOINTS)
async def test_too_many_tools(client: httpx.AsyncClient, path: str) -> None:
    body = _body(tools=[_tool("a"), _tool("b"), _tool("c")])
    _error(await client.post(path, json=body), 400, "tools", "SWITCHBOARD_MAX_TOOLS")


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
async def test_too_long_an_answer_asked_for(
    client: httpx.AsyncClient, path: str, field: str
) -> None:
    body = _body(**{field: 101})
    _error(await client.post(path, json=body), 400, field, "SWITCHBOARD_MAX_OUTPUT_TOKENS")


LONE_SURROGATE = '{"model": "auto", "messages": [{"role": "user", "content": "hi \\ud800 there"}]}'


@pytest.mark.parametrize("path", [*ENDPOINTS, "/v1/feedback"])
async def test_a_lone_surrogate_is_a_400_not_a_500(client: httpx.AsyncClient, path: str) -> None:
    body = LONE_SURROGATE if path != "/v1/feedback" else '{"decision_id": "dec_\\udc00"}'
    response = await client.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert "not valid JSON" in response.json()["error"]["message"]


async def test_a_surrogate_pair_is_fine(client: httpx.AsyncClient) -> None:
    body = LONE_SURROGATE.replace("\\ud800", "\\ud83d\\ude00")  # an emoji, as json.dumps writes it
    response = await client.post(
        "/v1/route", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text
