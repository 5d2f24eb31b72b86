"""Wire types: the OpenAI chat shapes Switchboard speaks, and its own routing extensions.

These are the canonical request, response and stream-chunk types inside Switchboard. Every
adapter turns them into its provider's format and back, so the rest of the code knows one shape.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ModelWrapValidatorHandler,
    field_validator,
    model_validator,
)

from app import request_limits as limits

Role = Literal["system", "developer", "user", "assistant", "tool"]


class ImageURL(BaseModel):
    url: str = Field(min_length=1)
    detail: Literal["auto", "low", "high"] | None = None


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class ImagePart(BaseModel):
    type: Literal["image_url"]
    image_url: ImageURL


class InputAudio(BaseModel):
    data: str
    format: str


class AudioPart(BaseModel):
    type: Literal["input_audio"]
    input_audio: InputAudio


ContentPart = Annotated[TextPart | ImagePart | AudioPart, Field(discriminator="type")]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Role
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[dict[str, JsonValue]] | None = None
    tool_call_id: str | None = None

    def text(self) -> str:
        """The message's text parts joined, ignoring images and audio."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(p.text for p in self.content if isinstance(p, TextPart))

    def has_image(self) -> bool:
        return isinstance(self.content, list) and any(
            isinstance(p, ImagePart) for p in self.content
        )

    def has_audio(self) -> bool:
        return isinstance(self.content, list) and any(
            isinstance(p, AudioPart) for p in self.content
        )


class StreamOptions(BaseModel):
    include_usage: bool = False


class RoutingPreferences(BaseModel):
    """Per-request routing knobs, sent as ``"switchboard": {...}`` in the chat body."""

    model_config = ConfigDict(extra="forbid")

    preset: Literal["quality", "balanced", "cheap"] | None = None
    cost_weight: float | None = Field(default=None, ge=0)
    max_cost_usd: float | None = Field(default=None, gt=0)
    models: list[str] | None = Field(default=None, min_length=1)
    capabilities: list[str] | None = None
    max_latency_ms: float | None = Field(default=None, gt=0)


class ChatRequest(BaseModel):
    """An OpenAI chat completion request; unknown OpenAI fields pass through to the upstream."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    n: int | None = Field(default=None, ge=1, le=1)
    stop: str | list[str] | None = None
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    seed: int | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    parallel_tool_calls: bool | None = None
    user: str | None = None
    tools: list[dict[str, JsonValue]] | None = None
    tool_choice: JsonValue | None = None
    response_format: dict[str, JsonValue] | None = None
    switchboard: RoutingPreferences | None = None

    @model_validator(mode="wrap")
    @classmethod
    def _within_limits(cls, data: Any, handler: ModelWrapValidatorHandler[ChatRequest]) -> Any:
        """The request's caps (``app.request_limits``): counts before anything is built, then
        text."""
        caps = limits.current()
        caps.check_shape(data)
        request = handler(data)
        caps.check(request)
        return request

    @field_validator("stop")
    @classmethod
    def _stop_limit(cls, v: str | list[str] | None) -> str | list[str] | None:
        if isinstance(v, list) and len(v) > 4:
            raise ValueError("at most 4 stop sequences")
        return v

    def output_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def upstream_extras(self) -> dict[str, Any]:
        """OpenAI fields this model does not name (they are forwarded as they came)."""
        return dict(self.model_extra or {})

    def prompt_text(self) -> str:
        """The text the router embeds: the last user turn."""
        for message in reversed(self.messages):
            if message.role == "user":
                return message.text()
        return self.messages[-1].text()


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class ToolCallFunction(BaseModel):
    name: str
    arguments: str


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None = None
    tool_calls: list[dict[str, JsonValue]] | None = None


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: str | None = "stop"
    logprobs: dict[str, JsonValue] | None = None  # passed through from OpenAI-compatible servers


def new_completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex


class ChatCompletion(BaseModel):
    id: str = Field(default_factory=new_completion_id)
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[Choice]
    usage: Usage | None = None
    system_fingerprint: str | None = None


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[dict[str, JsonValue]] | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: str | None = None
    logprobs: dict[str, JsonValue] | None = None  # passed through from OpenAI-compatible servers


class ChatChunk(BaseModel):
    """One streamed piece. ``usage`` is set on the final usage-only chunk (``choices`` empty)."""

    id: str = ""
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str = ""
    choices: list[ChunkChoice] = Field(default_factory=list)
    usage: Usage | None = None


class EmbeddingRequest(BaseModel):
    """Texts to embed with one model: what ``POST /v1/embeddings`` becomes, and adapters take."""

    model: str
    texts: list[str]
    dimensions: int | None = None
    user: str | None = None


class Embeddings(BaseModel):
    """One vector per text, in the order of ``EmbeddingRequest.texts``."""

    vectors: list[list[float]]
    model: str = ""
    prompt_tokens: int | None = None
    """As the provider counted them; None when it did not say."""
