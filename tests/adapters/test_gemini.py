"""The Gemini adapter against generateContent and streamGenerateContent (SSE)."""

from __future__ import annotations

import pytest

from adapters.gemini import GeminiAdapter
from app.errors import UpstreamAuthError
from app.schemas import ChatRequest
from tests.adapters.wire import KEY, Recorder, endpoint, fixture

REQUEST = ChatRequest.model_validate({
    "model": "auto",
    "messages": [{"role": "developer", "content": "Answer in one line."},
                 {"role": "user", "content": "Explain AI"},
                 {"role": "assistant", "content": "Machines that learn."},
                 {"role": "user", "content": [{"type": "text", "text": "And this?"},
                  {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}}]}],
    "max_completion_tokens": 100,
    "top_p": 0.9,
})  # fmt: skip


def _adapter(recorder: Recorder) -> GeminiAdapter:
    ep = endpoint("https://generativelanguage.googleapis.com", "gemini-2.5-flash")
    return GeminiAdapter(ep, recorder.client())


async def test_request_uses_header_key_and_gemini_shapes() -> None:
    recorder = Recorder(200, fixture("gemini_response.json"))
    await _adapter(recorder).complete(REQUEST)
    sent = recorder.requests[0]
    assert str(sent.url) == (
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
    )
    assert sent.headers["x-goog-api-key"] == KEY and KEY not in str(sent.url)
    assert recorder.sent == {
        "contents": [
            {"role": "user", "parts": [{"text": "Explain AI"}]},
            {"role": "model", "parts": [{"text": "Machines that learn."}]},
            {"role": "user", "parts": [{"text": "And this?"},
                                       {"inline_data": {"mime_type": "image/jpeg", "data": "/9j/4AAQ"}}]},
        ],
        "systemInstruction": {"parts": [{"text": "Answer in one line."}]},
        "generationConfig": {"topP": 0.9, "maxOutputTokens": 100},
    }  # fmt: skip


async def test_reply_is_translated() -> None:
    completion = await _adapter(Recorder(200, fixture("gemini_response.json"))).complete(REQUEST)
    assert completion.choices[0].message.content == "AI learns patterns from data."
    assert completion.usage is not None and completion.usage.total_tokens == 14
    assert completion.id == "mAitaLmkHPPlz7IPvtfUqQ4"


async def test_sse_stream() -> None:
    recorder = Recorder(200, fixture("gemini_stream.sse"), "text/event-stream")
    chunks = [c async for c in _adapter(recorder).stream(REQUEST)]
    assert str(recorder.requests[0].url).endswith(":streamGenerateContent?alt=sse")
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "The sky is blue."
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5


async def test_bad_key_is_an_auth_error_without_the_key() -> None:
    body = (
        b'{"error": {"code": 403, "message": "API key not valid.", "status": "PERMISSION_DENIED"}}'
    )
    with pytest.raises(UpstreamAuthError) as raised:
        await _adapter(Recorder(403, body)).complete(REQUEST)
    assert KEY not in str(raised.value)
