"""Chat Completions' current fields and routes through every adapter, with the ``openai`` SDK.

``developer`` messages and ``max_completion_tokens`` reach the real llama.cpp server in the
form it takes; fields a server lacks (``seed``, ``logprobs``, a JSON schema) are refused when
that model is named and routed around with ``auto``; tools, images and streams reach the fake
Anthropic and Gemini providers in their own formats.
"""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from tests import fake_providers
from tests.sdk.conftest import ANTHROPIC, GEMINI, LOCAL, OPENAI, Service

HELLO = [{"role": "user", "content": "Say hello in one short sentence."}]
SCHEMA = {"type": "json_schema",
          "json_schema": {"name": "greeting", "schema": {"type": "object"}}}  # fmt: skip
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "parameters": {"type": "object",
                                          "properties": {"location": {"type": "string"}}}}}  # fmt: skip


@pytest.fixture()
def client(sdk_service: Service) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{sdk_service.url}/v1", api_key="unused", max_retries=0)


def test_developer_role_and_max_completion_tokens_on_llama_cpp(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=LOCAL, max_completion_tokens=4, temperature=0,
        messages=[{"role": "developer", "content": "Answer in English."},
                  {"role": "user", "content": "Count from one to twenty, in words."}],
    )  # fmt: skip
    assert completion.model == LOCAL
    assert completion.choices[0].message.content
    assert completion.usage is not None and 0 < completion.usage.completion_tokens <= 4
    assert completion.choices[0].finish_reason == "length"


@pytest.mark.parametrize(
    ("field", "extra"),
    [("seed", {"seed": 7}), ("logprobs", {"logprobs": True}),
     ("json_schema", {"response_format": SCHEMA})],
)  # fmt: skip
def test_fields_a_server_lacks_are_refused_or_routed_around(
    client: openai.OpenAI, sdk_service: Service, field: str, extra: dict[str, object]
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=LOCAL, messages=HELLO, max_tokens=8, **extra)
    assert refused.value.param == field
    assert refused.value.code == "unsupported_field"

    body = {"model": "auto", "messages": HELLO, "switchboard": {"models": [LOCAL, OPENAI]}, **extra}
    decision = httpx.post(f"{sdk_service.url}/v1/route", json=body).json()
    local = next(c for c in decision["candidates"] if c["model"] == LOCAL)
    assert not local["eligible"] and local["reason"] == f"its server does not take {field}"
    assert decision["model"] == OPENAI
    answered = client.chat.completions.create(
        model="auto", messages=HELLO, extra_body={"switchboard": {"models": [LOCAL, OPENAI]}},
        **extra,
    )  # fmt: skip
    assert answered.model == OPENAI


def test_tools_and_images_through_anthropic_and_gemini(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model=ANTHROPIC, messages=HELLO, tools=[WEATHER])
    (call,) = completion.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {
        "location": "San Francisco, CA",
        "unit": "celsius",
    }
    assert completion.choices[0].finish_reason == "tool_calls"

    photo = {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}}
    client.chat.completions.create(
        model=GEMINI, messages=[{"role": "user", "content": [{"type": "text", "text": "What?"}, photo]}],
    )  # fmt: skip
    sent = fake_providers.received["/gemini/v1beta/models/gemini-2.5-flash:generateContent"]
    parts = sent["contents"][0]["parts"]
    assert {"inline_data": {"mime_type": "image/jpeg", "data": "/9j/4AAQ"}} in parts


def test_streamed_tool_calls_from_anthropic_arrive_as_chat_chunks(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model=ANTHROPIC, messages=HELLO,
                                                 tools=[WEATHER], stream=True))  # fmt: skip
    arguments = "".join(
        (d.function.arguments or "") for c in chunks if c.choices
        for d in c.choices[0].delta.tool_calls or [] if d.function
    )  # fmt: skip
    assert json.loads(arguments) == {"location": "San Francisco, CA", "unit": "fahrenheit"}
    assert all(c.model == ANTHROPIC for c in chunks)
