"""The model catalog: which models exist, where they live, what they cost and can do.

Loaded once from YAML (``SWITCHBOARD_CATALOG``, or the bundled ``app/data/catalog.yaml``).
A bad file stops start-up with a ``ConfigError`` that names the entry and field at fault.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Literal

import httpx
import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from adapters.base import FIELD_FEATURES, Endpoint
from adapters.registry import ADAPTERS, features
from app.errors import ConfigError
from app.selection.profiles import DeclaredProfile

Capability = Literal[
    "vision", "web_search", "tools", "json", "audio", "image_generation", "embeddings"
]
"""``embeddings`` marks an embeddings model: it answers ``POST /v1/embeddings``, never chat."""

BUNDLED_CATALOG = Path(__file__).parent / "data" / "catalog.yaml"


class Price(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)


class Launch(BaseModel):
    """A local server Switchboard starts and stops itself (today: llama.cpp's server)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["llama_cpp"] = "llama_cpp"
    gguf: str | list[str] = Field(
        description="a .gguf path; 'package:<package>/<file>' for a file a package ships; "
        "'package:<module>' for a module with MODEL_NAME and assemble(); or a list of paths "
        "and package files joined in order into one GGUF (then sha256 is required)"
    )
    sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="the GGUF's pinned SHA-256, checked before the server starts",
    )
    chat_format: str | None = Field(
        default=None, description="llama-cpp-python's chat format; unset: the GGUF's template"
    )
    n_ctx: int = Field(default=2048, gt=0)
    extra_args: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _pieces_are_pinned(self) -> Launch:
        if isinstance(self.gguf, list) and (not self.gguf or self.sha256 is None):
            raise ValueError("a gguf made of pieces needs at least one piece and its sha256")
        return self


class ModelEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    adapter: str
    base_url: str | None = None
    upstream_model: str | None = None
    api_key_env: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    price: Price
    context_window: int = Field(gt=0)
    capabilities: list[Capability] = Field(default_factory=list)
    local: bool = False
    timeout_s: float = Field(default=60.0, gt=0)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    launch: Launch | None = None
    profile_id: str | None = None
    profile: DeclaredProfile | None = None
    supports: dict[str, bool] = Field(
        default_factory=dict,
        description="Chat Completions fields this server takes, where it differs from its "
        "adapter's (adapters.base.FIELD_FEATURES), e.g. {developer_role: false}",
    )
    max_concurrency: int | None = Field(
        default=None, gt=0, description="upstream calls at once (unset: only the total limit)"
    )
    queue_timeout_s: float = Field(
        default=5.0, ge=0, description="how long a call waits for a free slot before 503"
    )
    stream_timeout_s: float = Field(
        default=600.0, gt=0, description="the longest a whole streamed answer may take"
    )

    @model_validator(mode="after")
    def _check(self) -> ModelEntry:
        if self.adapter not in ADAPTERS:
            raise ValueError(f"unknown adapter {self.adapter!r}; known: {sorted(ADAPTERS)}")
        if self.base_url is None and self.launch is None:
            raise ValueError("needs base_url (or launch: for a server Switchboard starts)")
        if self.base_url is not None and not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be http(s): {self.base_url!r}")
        unknown = sorted(set(self.supports) - set(FIELD_FEATURES))
        if unknown:
            raise ValueError(f"supports: unknown field {unknown[0]!r}; known: {FIELD_FEATURES}")
        return self

    @property
    def features(self) -> frozenset[str]:
        """The Chat Completions fields this model's server takes (adapter's, then the row's)."""
        found = set(features(self.adapter))
        found.update(name for name, on in self.supports.items() if on)
        found.difference_update(name for name, on in self.supports.items() if not on)
        return frozenset(found)

    @property
    def data_name(self) -> str:
        """The model's name in labelled data (``profile_id``, else its id)."""
        return self.profile_id or self.id

    def api_key(self) -> SecretStr | None:
        if not self.api_key_env:
            return None
        value = os.environ.get(self.api_key_env, "")
        return SecretStr(value) if value else None

    def missing_key(self) -> bool:
        return bool(self.api_key_env) and self.api_key() is None

    def endpoint(self, base_url: str | None = None) -> Endpoint:
        url = base_url or self.base_url
        if url is None:
            raise ConfigError(f"model {self.id!r} has no base URL yet (its server is not up)")
        return Endpoint(
            base_url=url.rstrip("/"),
            upstream_model=self.upstream_model or self.id,
            api_key=self.api_key(),
            headers=self.headers,
            timeout=httpx.Timeout(self.timeout_s, connect=self.connect_timeout_s),
        )

    def cost_usd(self, prompt_tokens: float, output_tokens: float) -> float:
        return (
            prompt_tokens * self.price.input_per_mtok + output_tokens * self.price.output_per_mtok
        ) / 1e6


class Catalog(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: list[ModelEntry] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Catalog:
        seen: set[str] = set()
        for entry in self.models:
            if entry.id in seen:
                raise ValueError(f"duplicate model id {entry.id!r}")
            seen.add(entry.id)
        return self

    def get(self, model_id: str) -> ModelEntry | None:
        return next((m for m in self.models if m.id == model_id), None)

    @property
    def ids(self) -> list[str]:
        return [m.id for m in self.models]


def _describe(exc: ValidationError, raw: object) -> str:
    lines = []
    for err in exc.errors():
        loc = list(err["loc"])
        where = ".".join(str(p) for p in loc)
        if (
            len(loc) >= 2
            and loc[0] == "models"
            and isinstance(loc[1], int)
            and isinstance(raw, dict)
        ):
            with contextlib.suppress(KeyError, IndexError, AttributeError, TypeError):
                where = f"models[{loc[1]}] (id {raw['models'][loc[1]].get('id')!r})" + "".join(
                    f".{p}" for p in loc[2:]
                )
        lines.append(f"  {where}: {err['msg']}")
    return "\n".join(lines)


def load_catalog(path: Path | None = None) -> Catalog:
    """Read and validate a catalog file; ``None`` means the bundled default."""
    source = path or BUNDLED_CATALOG
    try:
        raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read catalog {source}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"catalog {source} is not valid YAML: {exc}") from exc
    try:
        return Catalog.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"catalog {source} is invalid:\n{_describe(exc, raw)}") from exc
