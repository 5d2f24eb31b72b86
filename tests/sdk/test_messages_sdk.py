"""The official ``anthropic`` SDK against Switchboard's ``/v1/messages``, unchanged.

Answered by every adapter, not only Anthropic's: the real local model (llama.cpp), and fake
OpenAI, Anthropic and Gemini providers serving their documented fixtures. Plain, streamed (the
SDK's accumulator), tools, images, keys by ``x-api-key``, and Anthropic's error shape.
"""

from __future__ import annotations

import anthropic
import httpx
import pytest

from tests import fake_providers
from tests.sdk.conftest import (
    ANTHROPIC,
    GEMINI,
    LIMITED_ANTHROPIC,
    LOCAL,
    OPENAI,
    OVERLOADED,
    Service,
)

HELLO = [{"role": "user", "content": "Say hello in one short sentence."}]
WEATHER = {
    "name": "get_current_weather",
    "description": "The weather in a city.",
    "input_schema": {"type": "object", "properties": {"location": {"type": "string"}},
                     "required": ["location"]},
}  # fmt: skip
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg=="


@pytest.fixture()
def client(sdk_service: Service) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=sdk_service.url, api_key="unused", max_retries=0)


def _provider(path: str) -> dict[str, object]:
    return fake_providers.received[path]


def test_plain_answer_from_the_local_model(client: anthropic.Anthropic) -> None:
    raw = client.messages.with_raw_response.create(
        model=LOCAL, max_tokens=16, messages=HELLO, extra_body={"temperature": 0}
    )
    message = raw.parse()
    assert message.type == "message" and message.role == "assistant"
    assert message.model == LOCAL and message.id.startswith("msg_")
    assert message.content[0].type == "text" and message.content[0].text.strip()
    assert message.stop_reason in ("end_turn", "max_tokens")
    assert 0 < message.usage.output_tokens <= 16
    assert raw.headers["x-switchboard-model"] == LOCAL


def test_auto_routes_across_adapters(client: anthropic.Anthropic) -> None:
    for allowed, text in ((GEMINI, "AI learns patterns from data."),
                          (OPENAI, "Hello! How can I assist you today?"),
                          (ANTHROPIC, "Hi! My name is Claude.")):  # fmt: skip
        message = client.messages.create(
            model="auto", max_tokens=64, messages=HELLO,
            extra_body={"switchboard": {"models": [allowed]}},
        )  # fmt: skip
        assert message.model == allowed
        assert message.content[0].text == text


def test_system_blocks_and_stop_sequences_reach_the_provider(client: anthropic.Anthropic) -> None:
    client.messages.create(
        model=OPENAI, max_tokens=50, messages=HELLO, stop_sequences=["\n\n"],
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        metadata={"user_id": "user-7"},
    )  # fmt: skip
    sent = _provider("/openai/v1/chat/completions")
    assert sent["messages"] == [{"role": "system", "content": "Be brief."}, *HELLO]
    assert sent["stop"] == ["\n\n"] and sent["user"] == "user-7"
    assert sent["max_completion_tokens"] == 50  # the row's server takes the current field

    client.messages.create(model=ANTHROPIC, max_tokens=50, messages=HELLO, system="Be brief.")
    sent = _provider("/anthropic/v1/messages")
    assert sent["system"] == "Be brief." and sent["max_tokens"] == 50


def test_stream_with_the_sdk_accumulator(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model=LOCAL, max_tokens=16, messages=HELLO,
                                extra_body={"temperature": 0}) as stream:  # fmt: skip
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text.strip() and final.content[0].text == text
    assert final.model == LOCAL and final.usage.output_tokens > 0
    assert final.stop_reason in ("end_turn", "max_tokens")

    events = list(client.messages.create(model=ANTHROPIC, max_tokens=32, messages=HELLO,
                                         stream=True))  # fmt: skip
    assert [e.type for e in events] == [
        "message_start", "content_block_start", "content_block_delta", "content_block_delta",
        "content_block_stop", "message_delta", "message_stop",
    ]  # fmt: skip
    assert "".join(e.delta.text for e in events if e.type == "content_block_delta") == "Hello!"


def test_tools_plain_and_streamed(client: anthropic.Anthropic) -> None:
    message = client.messages.create(model=OPENAI, max_tokens=64, tools=[WEATHER],
                                     messages=[{"role": "user", "content": "Boston weather?"}])  # fmt: skip
    (use,) = message.content
    assert message.stop_reason == "tool_use"
    assert use.type == "tool_use" and use.name == "get_current_weather"
    assert use.input == {"location": "Boston, MA"}

    with client.messages.stream(model=ANTHROPIC, max_tokens=64, tools=[WEATHER],
                                messages=[{"role": "user", "content": "SF weather?"}]) as stream:  # fmt: skip
        final = stream.get_final_message()
    text, streamed_use = final.content
    assert text.type == "text" and streamed_use.type == "tool_use"
    assert streamed_use.input == {"location": "San Francisco, CA", "unit": "fahrenheit"}
    assert final.stop_reason == "tool_use"

    client.messages.create(model=OPENAI, max_tokens=64, tools=[WEATHER], messages=[
        {"role": "user", "content": "Boston weather?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": use.id,
                                           "name": use.name, "input": use.input}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id,
                                      "content": "22 C"}]},
    ])  # fmt: skip
    history = _provider("/openai/v1/chat/completions")["messages"]
    assert history[1]["tool_calls"][0]["function"]["name"] == "get_current_weather"
    assert history[2] == {"role": "tool", "content": "22 C", "tool_call_id": use.id}


def test_images_reach_each_provider_in_its_own_format(client: anthropic.Anthropic) -> None:
    photo = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
    question = [{"role": "user", "content": [photo, {"type": "text", "text": "What is this?"}]}]
    client.messages.create(model=OPENAI, max_tokens=32, messages=question)
    (user,) = _provider("/openai/v1/chat/completions")["messages"]
    assert user["content"][0] == {"type": "image_url",
                                  "image_url": {"url": f"data:image/png;base64,{PNG}"}}  # fmt: skip
    client.messages.create(model=GEMINI, max_tokens=32, messages=question)
    parts = _provider("/gemini/v1beta/models/gemini-2.5-flash:generateContent")["contents"][0][
        "parts"
    ]
    assert {"inline_data": {"mime_type": "image/png", "data": PNG}} in parts
    linked = {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}
    client.messages.create(model=ANTHROPIC, max_tokens=32,
                           messages=[{"role": "user", "content": [linked]}])  # fmt: skip
    (sent,) = _provider("/anthropic/v1/messages")["messages"]
    assert sent["content"][0] == linked


def test_keys_by_x_api_key(sdk_service: Service) -> None:
    key = sdk_service.issue_key(rpm=1)
    keyed = anthropic.Anthropic(base_url=sdk_service.url, api_key=key, max_retries=0)
    keyed.messages.create(model=OPENAI, max_tokens=8, messages=HELLO)
    with pytest.raises(anthropic.RateLimitError) as limited:
        keyed.messages.create(model=OPENAI, max_tokens=8, messages=HELLO)
    assert int(limited.value.response.headers["retry-after"]) >= 1
    assert limited.value.body["error"]["type"] == "rate_limit_error"
    wrong = anthropic.Anthropic(base_url=sdk_service.url, api_key="sk-sb-not-a-key",
                                max_retries=0)  # fmt: skip
    with pytest.raises(anthropic.AuthenticationError) as denied:
        wrong.messages.create(model=OPENAI, max_tokens=8, messages=HELLO)
    assert denied.value.body["error"]["type"] == "authentication_error"


def test_errors_in_anthropic_shape(client: anthropic.Anthropic, sdk_service: Service) -> None:
    with pytest.raises(anthropic.NotFoundError) as missing:
        client.messages.create(model="no-such-model", max_tokens=8, messages=HELLO)
    assert missing.value.body == {
        "type": "error",
        "error": {"type": "not_found_error", "message": missing.value.body["error"]["message"]},
    }
    with pytest.raises(anthropic.BadRequestError) as top_k:
        client.messages.create(model=OPENAI, max_tokens=8, messages=HELLO,
                               extra_body={"top_k": 5})  # fmt: skip
    assert "top_k" in top_k.value.message
    with pytest.raises(anthropic.RateLimitError) as limited:
        client.messages.create(model=LIMITED_ANTHROPIC, max_tokens=8, messages=HELLO)
    assert limited.value.response.headers["retry-after"] == fake_providers.RETRY_AFTER
    # FastAPI's own validation errors come in the same shape
    reply = httpx.post(f"{sdk_service.url}/v1/messages",
                       json={"model": OPENAI, "messages": HELLO})  # fmt: skip
    assert reply.status_code == 400
    assert reply.json()["type"] == "error"
    assert reply.json()["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in reply.json()["error"]["message"]
    unknown = httpx.post(f"{sdk_service.url}/v1/messages/nothing", json={})
    assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "not_found_error"
    chat = httpx.post(f"{sdk_service.url}/v1/chat/completions", json={"model": "x"})
    assert set(chat.json()["error"]) == {"message", "type", "param", "code"}  # OpenAI's, still


def test_a_provider_failing_mid_stream_ends_with_an_error_event(
    client: anthropic.Anthropic,
) -> None:
    seen: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as broken:
        for event in client.messages.create(model=OVERLOADED, max_tokens=32, messages=HELLO,
                                            stream=True):  # fmt: skip
            seen.append(event.type)
    assert "content_block_delta" in seen  # the text before the failure arrived
    assert broken.value.body["error"]["type"] == "overloaded_error"


def test_count_tokens(client: anthropic.Anthropic) -> None:
    counted = client.messages.count_tokens(model=LOCAL, messages=HELLO, system="Be brief.")
    assert 5 < counted.input_tokens < 50
