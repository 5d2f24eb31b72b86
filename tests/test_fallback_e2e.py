"""Fallback as a user sees it: providers that answer 429, 500, hang, or die mid-stream.

A catalog puts misbehaving upstreams (a local fake server) ahead of the real llama.cpp server;
Switchboard must retry what is safe, fall back, say so in the headers and metrics, end a broken
stream with an error event (never a switch of model), and never print the provider key.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import yaml

from tests import fake_upstream
from tests.processes import switchboard

SECRET = "sk-test-DO-NOT-LEAK-7f3a9c"
HELLO = [{"role": "user", "content": "Say hello."}]


def _row(model_id: str, base_url: str, prior: float, **extra: object) -> dict[str, object]:
    return {
        "id": model_id,
        "adapter": "openai_compat",
        "base_url": base_url,
        "api_key_env": "FAKE_PROVIDER_KEY",
        "price": {"input_per_mtok": 1.0, "output_per_mtok": 2.0},
        "context_window": 8192,
        "profile": {"prior_quality": prior},
        **extra,
    }


@pytest.fixture(scope="module")
def service(llama_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    tmp = tmp_path_factory.mktemp("fallback")
    with fake_upstream.fake_upstream() as fake:
        catalog = {
            "models": [
                _row("flaky/rate-limited", f"{fake}/status/429/v1", 0.99),
                _row("flaky/broken", f"{fake}/status/500/v1", 0.98),
                _row("flaky/slow", f"{fake}/hang/v1", 0.97, timeout_s=1.0),
                _row("flaky/midstream", f"{fake}/midstream/v1", 0.96),
                _row("flaky/rejects", f"{fake}/status/400/v1", 0.95),
                {**_row("local/qwen", llama_url, 0.2), "api_key_env": None, "local": True,
                 "upstream_model": "qwen2.5-coder-0.5b-instruct"},
            ]
        }  # fmt: skip
        path = tmp / "catalog.yaml"
        path.write_text(yaml.safe_dump(catalog))
        env = {
            "SWITCHBOARD_CATALOG": str(path),
            "SWITCHBOARD_RETRIES": "1",
            "SWITCHBOARD_BACKOFF_BASE_S": "0.01",
            "SWITCHBOARD_BREAKER_FAILURES": "1000",
            "FAKE_PROVIDER_KEY": SECRET,
        }
        log = tmp / "switchboard.log"
        with switchboard(env, log) as url:
            yield url, log


def _ask(url: str, allow: list[str], **extra: object) -> httpx.Response:
    body = {"model": "auto", "messages": HELLO, "max_tokens": 8, "temperature": 0,
            "switchboard": {"models": allow}, **extra}  # fmt: skip
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60)


@pytest.mark.parametrize(
    ("flaky", "path"),
    [("flaky/rate-limited", "/status/429/v1/chat/completions"),
     ("flaky/broken", "/status/500/v1/chat/completions"),
     ("flaky/slow", "/hang/v1/chat/completions")],
)  # fmt: skip
def test_retry_then_fall_back_to_the_next_model(
    service: tuple[str, Path], flaky: str, path: str
) -> None:
    url, _ = service
    before = fake_upstream.hits[path]
    reply = _ask(url, [flaky, "local/qwen"])
    assert reply.status_code == 200, reply.text
    assert reply.headers["x-switchboard-model"] == "local/qwen"
    assert reply.headers["x-switchboard-fallbacks"] == flaky
    assert reply.json()["switchboard"]["fallbacks"] == [flaky]
    # one try + one retry, then fallback; a timeout goes straight on (the model may still be
    # busy with the call it abandoned)
    assert fake_upstream.hits[path] - before == (1 if flaky == "flaky/slow" else 2)
    metrics = httpx.get(f"{url}/metrics").text
    assert f'switchboard_fallbacks_total{{model="{flaky}"}}' in metrics


def test_provider_rejection_is_not_retried_elsewhere(service: tuple[str, Path]) -> None:
    url, _ = service
    reply = _ask(url, ["flaky/rejects", "local/qwen"])
    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == "upstream_bad_request"


def test_all_models_failing_gives_the_last_error_with_retry_after(
    service: tuple[str, Path],
) -> None:
    url, _ = service
    reply = _ask(url, ["flaky/broken", "flaky/rate-limited"])
    assert reply.status_code in (429, 503)
    assert "Retry-After" in reply.headers
    assert reply.json()["error"]["type"]


def test_stream_that_fails_before_first_byte_falls_back(service: tuple[str, Path]) -> None:
    url, _ = service
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
    stream = client.chat.completions.create(
        model="auto", messages=HELLO, max_tokens=8, stream=True,
        extra_body={"switchboard": {"models": ["flaky/broken", "local/qwen"]}},
    )  # fmt: skip
    chunks = list(stream)
    assert chunks and all(c.model == "local/qwen" for c in chunks)


def test_stream_failing_after_first_byte_ends_with_error_event(service: tuple[str, Path]) -> None:
    url, _ = service
    body = {"model": "auto", "messages": HELLO, "stream": True,
            "switchboard": {"models": ["flaky/midstream", "local/qwen"]}}  # fmt: skip
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=30) as reply:
        assert reply.status_code == 200
        assert reply.headers["x-switchboard-model"] == "flaky/midstream"
        events = [line.removeprefix("data: ") for line in reply.iter_lines() if line]
    assert json.loads(events[0])["choices"][0]["delta"]["content"] == "partial "
    assert json.loads(events[0])["model"] == "flaky/midstream"  # never switched
    final = json.loads(events[-1])
    assert "error" in final and final["error"]["message"]
    assert "[DONE]" not in events

    client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.APIError):
        list(client.chat.completions.create(
            model="auto", messages=HELLO, stream=True,
            extra_body={"switchboard": {"models": ["flaky/midstream"]}},
        ))  # fmt: skip


def test_provider_key_never_appears_in_logs_or_replies(service: tuple[str, Path]) -> None:
    url, log = service
    replies = [_ask(url, ["flaky/broken", "flaky/rate-limited"]), _ask(url, ["flaky/rejects"])]
    replies.append(httpx.get(f"{url}/v1/models"))
    replies.append(httpx.get(f"{url}/metrics"))
    for reply in replies:
        assert SECRET not in reply.text
        assert SECRET not in str(reply.headers)
    assert fake_upstream.hits  # the failing calls really reached the fake provider
    assert SECRET not in log.read_text()
