"""Service settings: one pydantic-settings class, read from ``SWITCHBOARD_*`` variables.

Built by ``get_settings()`` or handed to ``create_app(settings)``; never at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHBOARD_", extra="ignore")

    catalog: Path | None = Field(default=None, description="catalog YAML; unset = bundled default")
    profiles: Path | None = Field(default=None, description="dir from `switchboard profiles build`")
    redis_url: SecretStr | None = Field(default=None, description="unset = in-memory state")
    admin_key: SecretStr | None = None
    require_api_key: bool = Field(default=False, description="refuse calls without a valid key")
    fail_open: bool = Field(
        default=True, description="when Redis is down, serve without limits (false: refuse, 503)"
    )

    default_preset: Literal["quality", "balanced", "cheap"] = "balanced"
    max_body_bytes: int = Field(default=20 * 1024 * 1024, gt=0)
    default_output_tokens: int = Field(
        default=300, gt=0, description="expected reply length when a request sets no max_tokens"
    )

    embedding_model: Path | None = Field(default=None, description="unset = all-MiniLM-L6-v2")
    embedding_backend: Literal["auto", "onnx", "torch"] = "auto"
    embedding_cache_size: int = Field(default=4096, ge=0)
    cache_dir: Path | None = Field(
        default=None, description="ONNX export etc.; ~/.cache/switchboard"
    )

    retries: int = Field(default=2, ge=0, description="retries per model before falling back")
    max_fallbacks: int = Field(default=2, ge=0)
    backoff_base_s: float = Field(default=0.25, ge=0)
    backoff_max_s: float = Field(default=4.0, ge=0)
    breaker_failures: int = Field(
        default=5, ge=1, description="failures that open a model's breaker"
    )
    breaker_cooldown_s: float = Field(default=30.0, gt=0)

    manage_local: bool = Field(
        default=True, description="start catalog models marked `launch:` (llama.cpp) as children"
    )
    local_start_timeout_s: float = Field(default=120.0, gt=0)

    cache_ttl_s: float = Field(default=0.0, ge=0, description="response cache TTL; 0 = off")
    cache_similarity: float = Field(
        default=0.95, gt=0, le=1, description="semantic cache: least cosine for a paraphrase hit"
    )

    log_level: str = "INFO"


def get_settings() -> Settings:
    return Settings()
