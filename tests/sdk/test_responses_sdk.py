"""The official ``openai`` SDK's Responses API against Switchboard, unchanged.

Plain, streamed (events and the SDK's own accumulator), tools, images, conversations kept by
the server (``previous_response_id``, per caller), built-in tools, and the errors the SDK maps to
its exception classes; answered by the real local model or fake providers' fixtures.
"""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from tests import fake_providers
from tests.sdk.conftest import (
    ANTHROPIC,
    LIMITED_OPENAI,
    LOCAL,
    OPENAI,
    OVERLOADED,
    SEARCH,
    SECRET,
    Service,
)

WEATHER = {
    "type": "function",
    "name": "get_current_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"location": {"type": "string"}},
                   "required": ["location"]},
}  # fmt: skip
PIXEL = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg=="


@pytest.fixture()
def client(sdk_service: Service) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{sdk_service.url}/v1", api_key="unused", max_retries=0)


def _provider(path: str) -> dict[str, object]:
    return fake_providers.received[path]


def test_plain_answer_from_the_local_model_with_routing_headers(client: openai.OpenAI) -> None:
    raw = client.responses.with_raw_response.create(
        model="auto", input="Say hello in one short sentence.", max_output_tokens=16,
        temperature=0, extra_body={"switchboard": {"models": [LOCAL]}},
    )  # fmt: skip
    response = raw.parse()
    assert response.object == "response" and response.id.startswith("resp_")
    assert response.model == LOCAL
    assert response.status in ("completed", "incomplete")
    assert response.output_text.strip()
    assert response.usage is not None and 0 < response.usage.output_tokens <= 16
    assert raw.headers["x-switchboard-model"] == LOCAL
    assert raw.headers["x-switchboard-decision-id"].startswith("dec_")
    assert raw.http_response.json()["switchboard"]["model"] == LOCAL


def test_instructions_and_limits_reach_the_provider_as_chat(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model=OPENAI, instructions="Answer like a pirate.", input="Hello?",
        max_output_tokens=50, temperature=0.3, metadata={"ticket": "42"},
    )  # fmt: skip
    assert response.output_text == "Hello! How can I assist you today?"  # the fixture's answer
    assert response.model == OPENAI and response.metadata == {"ticket": "42"}
    assert response.usage is not None and response.usage.input_tokens == 19
    sent = _provider("/openai/v1/chat/completions")
    assert sent["messages"] == [
        {"role": "system", "content": "Answer like a pirate."},
        {"role": "user", "content": "Hello?"},
    ]
    assert sent["max_completion_tokens"] == 50 and sent["temperature"] == 0.3


def test_stream_events_in_order_and_the_sdk_accumulator(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model=LOCAL, input="Say hello.", max_output_tokens=12,
                                          temperature=0, stream=True))  # fmt: skip
    kinds = [e.type for e in events]
    assert kinds[:4] == ["response.created", "response.in_progress",
                         "response.output_item.added", "response.content_part.added"]  # fmt: skip
    assert kinds[-4:-1] == ["response.output_text.done", "response.content_part.done",
                            "response.output_item.done"]  # fmt: skip
    assert kinds[-1] in ("response.completed", "response.incomplete")
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    final = events[-1].response
    assert text.strip() and final.output_text == text
    assert final.model == LOCAL and final.usage is not None and final.usage.output_tokens > 0

    # The SDK's own accumulator (it needs response.completed: the fixture's answer ends so)
    with client.responses.stream(model=OPENAI, input="Say hello.") as stream:
        streamed = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        accumulated = stream.get_final_response()
    assert accumulated.output_text == streamed == "Hello there"
    assert accumulated.model == OPENAI
    assert accumulated.usage is not None and accumulated.usage.output_tokens == 2


def test_function_tools_round_trip_through_a_stored_conversation(client: openai.OpenAI) -> None:
    first = client.responses.create(model=OPENAI, input="Weather in Boston?", tools=[WEATHER])
    (call,) = first.output
    assert call.type == "function_call" and call.name == "get_current_weather"
    assert json.loads(call.arguments) == {"location": "Boston, MA"}
    sent = _provider("/openai/v1/chat/completions")
    assert sent["tools"] == [{"type": "function", "function": {
        "name": "get_current_weather", "description": "The weather in a city.",
        "parameters": WEATHER["parameters"]}}]  # fmt: skip

    second = client.responses.create(
        model=OPENAI, previous_response_id=first.id, tools=[WEATHER],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "22 C, sunny"}],
    )  # fmt: skip
    assert second.previous_response_id == first.id
    history = _provider("/openai/v1/chat/completions")["messages"]
    assert history == [
        {"role": "user", "content": "Weather in Boston?"},
        {"role": "assistant", "tool_calls": [{"id": call.call_id, "type": "function",
         "function": {"name": "get_current_weather", "arguments": call.arguments}}]},
        {"role": "tool", "content": "22 C, sunny", "tool_call_id": call.call_id},
    ]  # fmt: skip


def test_streamed_function_call_arguments(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model=OPENAI, input="Weather in Boston?",
                                          tools=[WEATHER], stream=True))  # fmt: skip
    kinds = [e.type for e in events]
    assert "response.function_call_arguments.delta" in kinds
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert json.loads(done.arguments) == {"location": "Boston, MA"}
    final = events[-1]
    assert final.type == "response.completed"
    (item,) = final.response.output
    assert item.type == "function_call" and item.call_id == "call_DdmO9pD3xa9XTPNJ32zg2hcA"
    assert final.response.usage is not None and final.response.usage.total_tokens == 99


def test_tools_and_images_reach_anthropic_in_its_own_format(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model=ANTHROPIC, tools=[WEATHER],
        input=[{"role": "user", "content": [
            {"type": "input_text", "text": "What is in this photo, and the weather?"},
            {"type": "input_image", "image_url": PIXEL}]}],
    )  # fmt: skip
    text, call = response.output
    assert text.type == "message" and "weather" in response.output_text
    assert call.type == "function_call" and call.name == "get_weather"
    assert json.loads(call.arguments) == {"location": "San Francisco, CA", "unit": "celsius"}
    sent = _provider("/anthropic/v1/messages")
    (message,) = sent["messages"]
    image = message["content"][1]
    assert image == {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                  "data": PIXEL.split(",", 1)[1]}}  # fmt: skip
    assert sent["tools"][0]["input_schema"] == WEATHER["parameters"]


def test_previous_response_id_is_per_caller_and_store_is_honoured(
    client: openai.OpenAI, sdk_service: Service
) -> None:
    first = client.responses.create(model=OPENAI, input="My name is Ada.")
    client.responses.create(model=OPENAI, input="What is my name?", previous_response_id=first.id)
    assert _provider("/openai/v1/chat/completions")["messages"] == [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Hello! How can I assist you today?"},
        {"role": "user", "content": "What is my name?"},
    ]
    unstored = client.responses.create(model=OPENAI, input="Forget me.", store=False)
    with pytest.raises(openai.NotFoundError) as gone:
        client.responses.create(model=OPENAI, input="?", previous_response_id=unstored.id)
    assert gone.value.param == "previous_response_id"

    alice = openai.OpenAI(base_url=f"{sdk_service.url}/v1", api_key=sdk_service.issue_key(),
                          max_retries=0)  # fmt: skip
    bob = openai.OpenAI(base_url=f"{sdk_service.url}/v1", api_key=sdk_service.issue_key(),
                        max_retries=0)  # fmt: skip
    kept = alice.responses.create(model=OPENAI, input="A secret.")
    alice.responses.create(model=OPENAI, input="And?", previous_response_id=kept.id)
    for other in (bob, client):  # another key, and an anonymous caller
        with pytest.raises(openai.NotFoundError):
            other.responses.create(model=OPENAI, input="Tell me.", previous_response_id=kept.id)


def test_web_search_tool_routes_to_a_model_that_searches(client: openai.OpenAI) -> None:
    response = client.responses.create(model="auto", input="Will it rain in Berlin today?",
                                       tools=[{"type": "web_search_preview"}])  # fmt: skip
    assert response.model == SEARCH
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model=LOCAL, input="Rain?", tools=[{"type": "web_search"}])
    assert "web_search" in refused.value.message


def test_errors_map_to_the_sdk_exceptions(client: openai.OpenAI, sdk_service: Service) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        client.responses.create(model="no-such-model", input="hi")
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as builtin:
        client.responses.create(model=OPENAI, input="hi",
                                tools=[{"type": "file_search", "vector_store_ids": ["vs_1"]}])  # fmt: skip
    assert builtin.value.param == "tools[0].type"
    with pytest.raises(openai.BadRequestError) as unknown:
        client.responses.create(model=OPENAI, input="hi", extra_body={"conversation": "conv_1"})
    assert unknown.value.param == "conversation"
    with pytest.raises(openai.BadRequestError) as reasoning:
        client.responses.create(model=OPENAI, input="hi", reasoning={"effort": "high"})
    assert reasoning.value.param == "reasoning"
    with pytest.raises(openai.RateLimitError) as limited:
        client.responses.create(model=LIMITED_OPENAI, input="hi")
    assert limited.value.response.headers["retry-after"] == fake_providers.RETRY_AFTER
    bad = httpx.post(f"{sdk_service.url}/v1/responses", json={"model": OPENAI, "input": 5})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "input"


def test_a_provider_failing_mid_stream_ends_with_response_failed(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model=OVERLOADED, input="Hi", stream=True))
    kinds = [e.type for e in events]
    assert "response.output_text.delta" in kinds
    assert kinds[-2:] == ["error", "response.failed"]
    failed = events[-1].response
    assert failed.status == "failed" and failed.error is not None
    assert "Overloaded" in failed.error.message


def test_the_log_has_no_traceback_and_no_provider_key(sdk_service: Service) -> None:
    """The last test of the SDK tests (files run in order): nothing they did leaked."""
    text = sdk_service.log.read_text()
    assert "Traceback" not in text and "internal error" not in text
    assert SECRET not in text
