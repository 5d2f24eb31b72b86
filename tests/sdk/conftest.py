"""One Switchboard under uvicorn for the SDK tests: the real local model and fake providers.

The catalog holds the real llama.cpp server (Gemma 3 270M), hosted providers served by
``tests.fake_providers`` from byte-exact fixtures of their documented wire formats (OpenAI,
Anthropic, Gemini), providers that rate-limit or break mid-stream, a model that searches the
web, and an embeddings model. Tests name the model they mean; ``auto`` tests say which models
may answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from tests.fake_providers import fake_providers
from tests.processes import LLAMA_ALIAS, switchboard

LOCAL = "local/qwen"
OPENAI = "openai/fake-gpt"
ANTHROPIC = "anthropic/fake-claude"
GEMINI = "google/fake-gemini"
LIMITED_OPENAI = "limited/openai"
LIMITED_ANTHROPIC = "limited/anthropic"
OVERLOADED = "broken/anthropic"
SEARCH = "search/fake-sonar"
EMBEDDER = "openai/fake-embedding"
SECRET = "sk-fake-provider-key-DO-NOT-LEAK"
ADMIN = "admin-secret-for-sdk-tests"


@dataclass(frozen=True)
class Service:
    url: str
    providers: str
    log: Path

    def issue_key(self, **limits: object) -> str:
        """A fresh Switchboard API key (``rpm``, ``tpm``, ``budget_usd`` optional)."""
        reply = httpx.post(f"{self.url}/v1/admin/keys", json={"name": "sdk", **limits},
                           headers={"authorization": f"Bearer {ADMIN}"})  # fmt: skip
        assert reply.status_code == 201, reply.text
        key: str = reply.json()["key"]
        return key


def _row(
    model_id: str, adapter: str, base_url: str, prior: float, **extra: object
) -> dict[str, object]:
    return {
        "id": model_id,
        "adapter": adapter,
        "base_url": base_url,
        "api_key_env": "FAKE_PROVIDER_KEY",
        "price": {"input_per_mtok": 1.0, "output_per_mtok": 2.0},
        "context_window": 100000,
        "profile": {"prior_quality": prior},
        **extra,
    }


def catalog(llama_url: str, fake: str) -> dict[str, object]:
    vision = ["vision", "tools", "json"]
    return {
        "models": [
            {"id": LOCAL, "adapter": "openai_compat", "base_url": llama_url,
             "upstream_model": LLAMA_ALIAS, "local": True, "context_window": 2048,
             "capabilities": ["json"],  # JSON mode, but no schema (below)
             "price": {"input_per_mtok": 0.0, "output_per_mtok": 0.0},
             # a server without these fields: named it is refused, auto routes around it
             "supports": {"parallel_tool_calls": False, "seed": False, "logprobs": False,
                          "json_schema": False},
             "profile": {"prior_quality": 0.2}},
            _row(OPENAI, "openai_compat", f"{fake}/openai/v1", 0.9, capabilities=vision,
                 supports={"developer_role": True, "max_completion_tokens": True}),
            _row(ANTHROPIC, "anthropic", f"{fake}/anthropic", 0.85, capabilities=["vision", "tools"]),
            _row(GEMINI, "gemini", f"{fake}/gemini", 0.8, capabilities=vision,
                 upstream_model="gemini-2.5-flash"),
            _row(LIMITED_OPENAI, "openai_compat", f"{fake}/ratelimited/openai/v1", 0.1),
            _row(LIMITED_ANTHROPIC, "anthropic", f"{fake}/ratelimited/anthropic", 0.1),
            _row(OVERLOADED, "anthropic", f"{fake}/overloaded/anthropic", 0.1),
            _row(SEARCH, "openai_compat", f"{fake}/openai/v1", 0.3, capabilities=["web_search"]),
            _row(EMBEDDER, "openai_compat", f"{fake}/openai/v1", 0.0, capabilities=["embeddings"],
                 price={"input_per_mtok": 0.02, "output_per_mtok": 0.0}),
        ]
    }  # fmt: skip


@pytest.fixture(scope="session")
def sdk_service(llama_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    tmp = tmp_path_factory.mktemp("sdk")
    with fake_providers() as fake:
        path = tmp / "catalog.yaml"
        path.write_text(yaml.safe_dump(catalog(llama_url, fake)))
        env = {
            "SWITCHBOARD_CATALOG": str(path),
            "SWITCHBOARD_RETRIES": "0",
            "SWITCHBOARD_BREAKER_FAILURES": "1000",
            "SWITCHBOARD_ADMIN_KEY": ADMIN,
            "FAKE_PROVIDER_KEY": SECRET,
        }
        log = tmp / "switchboard.log"
        with switchboard(env, log) as url:
            yield Service(url, fake, log)
