"""Service settings: one pydantic-settings class, read from ``SWITCHBOARD_*`` variables.

Built by ``get_settings()`` or handed to ``create_app(settings)``; never at import time. Bad
values stop start-up: ``get_settings`` turns pydantic's error into a ``ConfigError`` naming the
variable. Secrets that open doors (the admin key, the glasses header value) are either unset or
at least ``MIN_SECRET_CHARS`` long: an empty ``SWITCHBOARD_ADMIN_KEY`` (what a compose file passes
for an unset variable) would otherwise turn admin on with a secret anyone can sign sessions with.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.errors import ConfigError

MIN_SECRET_CHARS = 16


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHBOARD_", extra="ignore")

    catalog: Path | None = Field(default=None, description="catalog YAML; unset = bundled default")
    profiles: Path | None = Field(default=None, description="dir from `switchboard profiles build`")
    redis_url: SecretStr | None = Field(default=None, description="unset = in-memory state")
    admin_key: SecretStr | None = Field(
        default=None,
        description=f"admin endpoints and console; unset = off, else {MIN_SECRET_CHARS}+ chars",
    )
    require_api_key: bool = Field(default=False, description="refuse calls without a valid key")
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="IPs/CIDRs whose X-Forwarded-Proto/-For are believed; empty = nobody's",
    )
    fail_open: bool = Field(
        default=True, description="when Redis is down, serve without limits (false: refuse, 503)"
    )

    default_preset: Literal["quality", "balanced", "cheap"] = "balanced"
    max_body_bytes: int = Field(default=20 * 1024 * 1024, gt=0)
    max_messages: int = Field(default=2048, gt=0, description="messages per chat request")
    max_text_chars: int = Field(
        default=1_000_000, gt=0, description="characters of message text per request (413 past it)"
    )
    max_content_parts: int = Field(
        default=4096, gt=0, description="content parts (text, image, audio) per request"
    )
    max_image_parts: int = Field(default=100, ge=0, description="image parts per request")
    max_tools: int = Field(default=128, ge=0, description="tool definitions per request")
    max_output_tokens: int = Field(
        default=128_000, gt=0, description="largest max_tokens / max_completion_tokens accepted"
    )
    default_output_tokens: int = Field(
        default=300, gt=0, description="expected reply length when a request sets no max_tokens"
    )

    embedding_model: Path | None = Field(default=None, description="unset = all-MiniLM-L6-v2")
    embedding_backend: Literal["auto", "static", "onnx-int8", "onnx", "torch"] = "auto"
    turn_embedding_model: Path | None = Field(
        default=None,
        description="sentence-transformers directory that reads glasses turns (a photo or the "
        "client's time or place); unset = all-mpnet-base-v2 from PyPI "
        "(app.embedding.turn_model); needs a turn classifier fitted on it",
    )
    embedding_max_tokens: int | None = Field(
        default=None,
        gt=0,
        description="tokens of the last turn the encoder reads; unset = 128 "
        "(app.embedding.encoder.DEFAULT_MAX_TOKENS); profiles built with another bound keep theirs",
    )
    embedding_threads: int | None = Field(
        default=None, gt=0, description="encoder threads; unset = the cores (divided by workers)"
    )
    embedding_batch_wait_s: float = Field(
        default=0.001, ge=0, le=0.01, description="under load, how long a batch waits for more"
    )
    embedding_queue_timeout_s: float | None = Field(
        default=2.0,
        gt=0,
        description="a request that would wait longer than this for the encoder gets 503 at once",
    )
    embedding_cache_bytes: int = Field(
        default=32 * 1024 * 1024, ge=0, description="query embedding cache, texts included"
    )
    cache_dir: Path | None = Field(
        default=None, description="ONNX export etc.; ~/.cache/switchboard"
    )

    @property
    def cache_path(self) -> Path:
        """``cache_dir``, or its default ``~/.cache/switchboard``."""
        return self.cache_dir or Path.home() / ".cache" / "switchboard"

    retries: int = Field(default=2, ge=0, description="retries per model before falling back")
    max_fallbacks: int = Field(default=2, ge=0)
    backoff_base_s: float = Field(default=0.25, ge=0)
    backoff_max_s: float = Field(default=4.0, ge=0)
    breaker_failures: int = Field(
        default=5, ge=1, description="failures that open a model's breaker"
    )
    breaker_cooldown_s: float = Field(default=30.0, gt=0)
    hedge: bool = Field(
        default=True,
        description="under a deadline, start the next model when one is slower than its p95",
    )
    max_hedges: int = Field(
        default=1, ge=0, le=3, description="extra calls a request's hedging may start"
    )
    max_upstream_concurrency: int = Field(
        default=256, gt=0, description="upstream calls at once, all models together"
    )
    upstream_queue: int = Field(
        default=256, ge=0, description="calls that may wait for a free upstream slot"
    )
    upstream_queue_timeout_s: float = Field(
        default=5.0, ge=0, description="how long a call waits for a free slot before 503"
    )

    manage_local: bool = Field(
        default=True, description="start catalog models marked `launch:` (llama.cpp) as children"
    )
    local_start_timeout_s: float = Field(default=120.0, gt=0)
    local_restart_base_s: float = Field(
        default=1.0, gt=0, description="first wait before restarting a local server that exited"
    )
    local_restart_max_s: float = Field(
        default=60.0, gt=0, description="longest wait between restarts (the wait doubles per try)"
    )
    local_urls: dict[str, str] = Field(
        default_factory=dict,
        description="API roots of `launch:` models already running (JSON: model id -> URL); "
        "set by `switchboard serve --workers N`, whose parent starts them once for all workers",
    )

    memory_max_entries: int = Field(
        default=20_000, gt=0, description="in-memory state (no Redis): entries kept per table"
    )
    feedback_max_points: int = Field(
        default=50_000, gt=0, description="feedback records kept, and points routing learns from"
    )
    feedback_max_points_per_key: int = Field(
        default=1000, gt=0, description="feedback points one API key's feedback may hold"
    )
    feedback_key_weight: float = Field(
        default=10.0, gt=0, description="summed weight of one key's feedback (labelled prompts)"
    )

    cache_ttl_s: float = Field(default=0.0, ge=0, description="response cache TTL; 0 = off")
    cache_similarity: float = Field(
        default=0.95, gt=0, le=1, description="semantic cache: least cosine for a paraphrase hit"
    )

    responses_ttl_s: float = Field(
        default=24 * 3600.0, gt=0, description="how long a stored response can be continued"
    )
    responses_max_bytes: int = Field(
        default=1_000_000, gt=0, description="largest conversation kept for previous_response_id"
    )
    responses_per_caller: int = Field(
        default=1000, gt=0, description="stored responses per caller per responses_ttl_s"
    )

    noa_path: str = Field(
        default="/noa", pattern=r"^/[A-Za-z0-9/_.-]*$", description="the glasses endpoint's path"
    )
    noa_auth_header: str = Field(
        default="authorization", description="header the glasses app sends its key in"
    )
    noa_auth_value: SecretStr | None = Field(
        default=None, description="expected value of that header; unset = Switchboard API keys"
    )
    noa_deadline_s: float = Field(
        default=8.0, gt=0, description="time a glasses turn may take, transcription included"
    )
    noa_max_image_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    noa_max_image_pixels: int = Field(
        default=4096 * 4096, gt=0, description="larger photos are refused before decoding"
    )
    noa_max_history: int = Field(default=20, ge=0, description="history messages kept per turn")
    noa_max_tokens: int = Field(
        default=200, gt=0, description="answer length cap: glasses show a few sentences"
    )

    log_level: str = "INFO"
    access_log: bool = Field(default=True, description="uvicorn's log line for every request")

    transcription: Literal["local", "openai", "off"] = Field(
        default="local",
        description="speech to text: offline Whisper (the `local` extra), an OpenAI-compatible "
        "API, or none",
    )
    transcription_base_url: str = Field(
        default="https://api.openai.com/v1",
        description="API root for transcription=openai (OpenAI, Groq, faster-whisper-server...)",
    )
    transcription_model: str = Field(
        default="whisper-1", description="model sent upstream; ignored for transcription=local"
    )
    transcription_api_key_env: str = Field(
        default="OPENAI_API_KEY",
        description="name of the env var holding the transcription API key; unset = no key",
    )
    max_audio_seconds: float = Field(
        default=120.0, gt=0, description="longest recording accepted for transcription"
    )

    @field_validator("admin_key", "noa_auth_value")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().strip()) < MIN_SECRET_CHARS:
            raise ValueError(
                f"must be unset or at least {MIN_SECRET_CHARS} characters (not blank); "
                "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: object) -> object:
        """A comma-separated list (``10.0.0.0/8,192.0.2.7``) or a JSON array, of valid networks."""
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else text.split(",")
        if not isinstance(value, list):
            return value
        value = [str(item).strip() for item in value if str(item).strip()]
        for item in value:
            ipaddress.ip_network(item, strict=False)  # ValueError names the bad entry
        return value


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        name = "SWITCHBOARD_" + "_".join(str(part) for part in error["loc"][:1]).upper()
        lines.append(f"{name}: {error['msg'].removeprefix('Value error, ')}")
    return "invalid settings:\n  " + "\n  ".join(lines)


def get_settings() -> Settings:
    """The settings from the environment; ``ConfigError`` (naming the variable) when invalid."""
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
