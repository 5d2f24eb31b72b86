"""Bad input on every API gets a 4xx in that API's error shape, never a 500 or a traceback."""

from __future__ import annotations

import httpx
import pytest

from tests.sdk.conftest import OPENAI, Service

HI = [{"role": "user", "content": "hi"}]
BAD = [
    ("/v1/responses", b"{not json"),
    ("/v1/responses", b"[1, 2]"),
    ("/v1/responses", {"input": "hi"}),
    ("/v1/responses", {"model": OPENAI, "input": ["just a string"]}),
    ("/v1/responses", {"model": OPENAI, "input": [{"role": "wizard", "content": "hi"}]}),
    ("/v1/responses", {"model": OPENAI, "input": [{"role": "user", "content": [7]}]}),
    ("/v1/responses", {"model": OPENAI, "input": [{"role": "user", "content": {"a": 1}}]}),
    ("/v1/responses", {"model": OPENAI, "input": [{"type": "function_call_output",
                                                   "call_id": "c", "output": [3]}]}),
    ("/v1/responses", {"model": OPENAI, "input": "hi", "tools": [{"type": 5}]}),
    ("/v1/responses", {"model": OPENAI, "input": "hi", "tool_choice": 3}),
    ("/v1/responses", {"model": OPENAI, "input": "hi", "text": {"format": {"type": "yaml"}}}),
    ("/v1/responses", {"model": OPENAI, "input": "hi", "max_output_tokens": 0}),
    ("/v1/responses", {"model": OPENAI, "input": "hi", "previous_response_id": "resp_nope"}),
    ("/v1/responses", {"model": OPENAI, "input": "hi", "metadata": {"k": 1}}),
    ("/v1/messages", b"{not json"),
    ("/v1/messages", {"model": OPENAI, "max_tokens": 5, "messages": []}),
    ("/v1/messages", {"model": OPENAI, "max_tokens": 5, "messages": ["hi"]}),
    ("/v1/messages", {"model": OPENAI, "max_tokens": 5, "messages": [{"role": "user"}]}),
    ("/v1/messages", {"model": OPENAI, "max_tokens": 5,
                      "messages": [{"role": "user", "content": [{"type": "image"}]}]}),
    ("/v1/messages", {"model": OPENAI, "max_tokens": 5, "messages": HI, "system": [{"a": 1}]}),
    ("/v1/messages", {"model": OPENAI, "max_tokens": 5, "messages": HI, "temperature": 1.5}),
    ("/v1/messages", {"model": OPENAI, "max_tokens": 5, "messages": HI,
                      "tool_choice": {"type": "sometimes"}}),
    ("/v1/messages", {"model": OPENAI, "max_tokens": 5, "messages": HI,
                      "stop_sequences": ["a", "b", "c", "d", "e"]}),
    ("/v1/messages/count_tokens", {"model": OPENAI, "messages": "hi"}),
    ("/v1/embeddings", {"model": "local/all-minilm-l6-v2"}),
    ("/v1/embeddings", {"model": "local/all-minilm-l6-v2", "input": {"text": "hi"}}),
    ("/v1/embeddings", {"model": "local/all-minilm-l6-v2", "input": "hi",
                        "encoding_format": "int8"}),
]  # fmt: skip


@pytest.mark.parametrize(("path", "body"), BAD)
def test_bad_bodies_get_a_4xx_in_the_apis_shape(
    sdk_service: Service, path: str, body: bytes | dict[str, object]
) -> None:
    url = sdk_service.url + path
    if isinstance(body, bytes):
        reply = httpx.post(url, content=body, headers={"content-type": "application/json"})
    else:
        reply = httpx.post(url, json=body)
    assert 400 <= reply.status_code < 500, reply.text
    assert "Traceback" not in reply.text
    payload = reply.json()
    if path.startswith("/v1/messages"):
        assert payload["type"] == "error" and set(payload["error"]) == {"type", "message"}
    else:
        assert set(payload["error"]) == {"message", "type", "param", "code"}
