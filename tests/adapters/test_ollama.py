"""The Ollama adapter against /api/chat, with NDJSON streaming."""

from __future__ import annotations

from adapters.ollama import OllamaAdapter
from app.schemas import ChatRequest
from tests.adapters.wire import Recorder, endpoint, fixture

REQUEST = ChatRequest.model_validate({
    "model": "auto",
    "messages": [{"role": "user", "content": "Why is the sky blue?"}],
    "temperature": 0, "seed": 42, "max_tokens": 64, "stop": ["\n\n"],
})  # fmt: skip


def _adapter(recorder: Recorder) -> OllamaAdapter:
    return OllamaAdapter(endpoint("http://127.0.0.1:11434", "llama3.2"), recorder.client())


async def test_request_body() -> None:
    recorder = Recorder(200, fixture("ollama_response.json"))
    await _adapter(recorder).complete(REQUEST)
    assert str(recorder.requests[0].url) == "http://127.0.0.1:11434/api/chat"
    assert recorder.sent == {
        "model": "llama3.2",
        "messages": [{"role": "user", "content": "Why is the sky blue?"}],
        "stream": False,
        "options": {"temperature": 0.0, "seed": 42, "num_predict": 64, "stop": ["\n\n"]},
    }


async def test_reply_and_usage() -> None:
    completion = await _adapter(Recorder(200, fixture("ollama_response.json"))).complete(REQUEST)
    assert completion.choices[0].message.content == "Hello! How are you today?"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (26, 298)


async def test_ndjson_stream() -> None:
    recorder = Recorder(200, fixture("ollama_stream.ndjson"), "application/x-ndjson")
    chunks = [c async for c in _adapter(recorder).stream(REQUEST)]
    assert recorder.sent["stream"] is True
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "The sky"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 282
