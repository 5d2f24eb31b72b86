"""The request pipeline as a paying customer and an operator see it: money, faults, traces.

One Switchboard (built in this process, so its traces go to the SDK's in-memory exporter, and
served by uvicorn on loopback) with a real ``redis-server`` as its store, in front of fake
providers (``tests/fake_upstream.py``): one that streams, one that answers, one that trickles a
byte at a time, one that fails. Each test is a fault a real deployment meets: a client that drops
a stream, Redis dying between reserve and settle, a provider that never finishes, a model whose
slots are all taken, a budget that must bound what the provider may bill.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
import yaml
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from app.main import create_app
from app.settings import Settings
from tests import fake_upstream
from tests.processes import CACHE
from tests.redis_server import RedisProcess, redis_server

ADMIN = "pipeline-admin-key-0123456789"
HELLO = [{"role": "user", "content": "Say hello."}]
DEFAULT_OUTPUT = 300


def _row(model_id: str, base_url: str, prior: float, **extra: object) -> dict[str, object]:
    return {
        "id": model_id,
        "adapter": "openai_compat",
        "base_url": base_url,
        "price": {"input_per_mtok": 1.0, "output_per_mtok": 2.0},
        "context_window": 8192,
        "profile": {"prior_quality": prior},
        **extra,
    }


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    with redis_server(persistent=True) as server:
        yield server


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, spans: InMemorySpanExporter, redis: RedisProcess
) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("pipeline")
    with fake_upstream.fake_upstream() as fake:
        catalog = {
            "models": [
                _row("fake/broken", f"{fake}/status/500/v1", 0.95),
                _row("fake/stream", f"{fake}/stream/stream/v1", 0.9),
                _row("fake/answer", f"{fake}/answer/answer/v1", 0.5),
                _row("fake/trickle", f"{fake}/trickle/v1", 0.1, timeout_s=1.0),
                _row("fake/busy", f"{fake}/stream/busy/v1", 0.1, max_concurrency=1,
                     queue_timeout_s=0.2),
            ]
        }  # fmt: skip
        path = tmp / "catalog.yaml"
        path.write_text(yaml.safe_dump(catalog))
        settings = Settings(
            catalog=path,
            redis_url=redis.url,
            admin_key=ADMIN,
            retries=1,
            backoff_base_s=0.01,
            breaker_failures=1000,
            cache_dir=CACHE,
            manage_local=False,
            transcription="off",
            default_output_tokens=DEFAULT_OUTPUT,
        )  # type: ignore[call-arg]
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(spans))
        with fake_upstream.serve(create_app(settings, provider)) as url:
            yield url


def _key(service: str, budget_usd: float | None = None) -> tuple[str, dict[str, str]]:
    body: dict[str, object] = {"name": "pipeline"}
    if budget_usd is not None:
        body["budget_usd"] = budget_usd
    created = httpx.post(f"{service}/v1/admin/keys", json=body,
                         headers={"authorization": f"Bearer {ADMIN}"})  # fmt: skip
    assert created.status_code == 201, created.text
    return created.json()["id"], {"authorization": f"Bearer {created.json()['key']}"}


def _spend(service: str, key_id: str) -> float:
    reply = httpx.get(f"{service}/v1/admin/keys/{key_id}",
                      headers={"authorization": f"Bearer {ADMIN}"})  # fmt: skip
    assert reply.status_code == 200, reply.text
    return float(reply.json()["spend_usd"])


def _until(check: Callable[[], bool], seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def _chat(model: str, **extra: object) -> dict[str, object]:
    return {"model": model, "messages": HELLO, **extra}


def test_a_stream_the_client_drops_is_still_charged(service: str) -> None:
    key_id, key = _key(service, budget_usd=1.0)
    with httpx.stream("POST", f"{service}/v1/chat/completions", headers=key, timeout=30,
                      json=_chat("fake/stream", stream=True)) as reply:  # fmt: skip
        assert reply.status_code == 200
        lines = reply.iter_lines()
        assert next(line for line in lines if line.startswith("data: "))
    # closed after the first event: the words sent so far (and the prompt) are billed
    assert _until(lambda: _spend(service, key_id) > 0), "a dropped stream was charged nothing"
    charged = _spend(service, key_id)
    full = (50 * 1.0 + fake_upstream.WORDS * 2.0) / 1e6
    assert charged < full  # it stopped early: not the whole answer
    # the hold is gone: the rest of the budget can be spent at once
    reply = httpx.post(f"{service}/v1/chat/completions", headers=key, timeout=30,
                       json=_chat("fake/answer"))  # fmt: skip
    assert reply.status_code == 200, reply.text


def test_a_budget_bounds_the_output_the_provider_may_bill(service: str) -> None:
    path = "/answer/answer/v1/chat/completions"
    fake_upstream.received.pop(path, None)
    _, key = _key(service, budget_usd=5.0)
    assert httpx.post(f"{service}/v1/chat/completions", json=_chat("fake/answer"),
                      headers=key).status_code == 200  # fmt: skip
    assert (
        httpx.post(f"{service}/v1/chat/completions", json=_chat("fake/answer")).status_code == 200
    )
    budgeted, anonymous = fake_upstream.received[path][-2:]
    assert budgeted["max_tokens"] == DEFAULT_OUTPUT  # what the hold assumed
    assert "max_tokens" not in anonymous  # no budget: the caller's own choice
    capped = httpx.post(f"{service}/v1/chat/completions", headers=key,
                        json=_chat("fake/answer", max_tokens=5000))  # fmt: skip
    assert capped.status_code == 200  # held for 5000 output tokens, and limited to them
    assert fake_upstream.received[path][-1]["max_tokens"] == 5000


def test_fields_billed_beyond_tokens_are_refused_on_budgeted_keys(service: str) -> None:
    _, key = _key(service, budget_usd=5.0)
    tier = httpx.post(f"{service}/v1/chat/completions", headers=key,
                      json=_chat("fake/answer", service_tier="priority"))  # fmt: skip
    assert tier.status_code == 400 and tier.json()["error"]["param"] == "service_tier"
    unknown = httpx.post(f"{service}/v1/chat/completions", headers=key,
                         json=_chat("fake/answer", surprise_fee=True))  # fmt: skip
    assert unknown.status_code == 400 and unknown.json()["error"]["param"] == "surprise_fee"
    default = httpx.post(f"{service}/v1/chat/completions", headers=key,
                         json=_chat("fake/answer", service_tier="default"))  # fmt: skip
    assert default.status_code == 200, default.text


def test_a_provider_that_trickles_bytes_is_cut_off_at_its_deadline(service: str) -> None:
    reply = httpx.post(f"{service}/v1/chat/completions", json=_chat("fake/trickle"), timeout=60)
    assert reply.status_code == 504, reply.text
    assert reply.json()["error"]["code"] == "upstream_timeout"


def test_a_model_with_every_slot_taken_is_busy_not_broken(service: str) -> None:
    with httpx.stream("POST", f"{service}/v1/chat/completions", timeout=30,
                      json=_chat("fake/busy", stream=True)) as holding:  # fmt: skip
        assert holding.status_code == 200
        busy = httpx.post(f"{service}/v1/chat/completions", json=_chat("fake/busy"), timeout=30)
        assert busy.status_code == 503, busy.text
        assert busy.json()["error"]["code"] == "overloaded" and busy.headers["retry-after"]
        holding.read()
    models = httpx.get(f"{service}/v1/models").json()["data"]
    entry = next(m for m in models if m["id"] == "fake/busy")
    assert entry["switchboard"]["available"]  # waiting for a slot opened no breaker
    again = httpx.post(f"{service}/v1/chat/completions", json=_chat("fake/busy"), timeout=30)
    assert again.status_code == 200, again.text


def _by_kind(finished: tuple[ReadableSpan, ...], kind: SpanKind) -> list[ReadableSpan]:
    return [s for s in finished if s.kind == kind]


def test_a_request_and_each_upstream_try_are_traced(
    service: str, spans: InMemorySpanExporter
) -> None:
    spans.clear()
    body = _chat("auto", switchboard={"models": ["fake/broken", "fake/answer"]})
    reply = httpx.post(f"{service}/v1/chat/completions", json=body, timeout=30)
    assert reply.status_code == 200, reply.text
    assert _until(lambda: len(_by_kind(spans.get_finished_spans(), SpanKind.SERVER)) == 1, 5)
    finished = spans.get_finished_spans()
    (request,) = _by_kind(finished, SpanKind.SERVER)
    attrs = dict(request.attributes or {})
    assert request.name == "chat auto"
    assert attrs["gen_ai.operation.name"] == "chat" and attrs["gen_ai.request.model"] == "auto"
    assert attrs["gen_ai.response.model"] == "fake/answer"
    assert attrs["switchboard.decision_id"] == reply.headers["x-switchboard-decision-id"]
    assert list(attrs["switchboard.fallbacks"]) == ["fake/broken"]  # type: ignore[arg-type]
    assert attrs["gen_ai.usage.input_tokens"] == 50 and attrs["gen_ai.usage.output_tokens"] == 10
    upstream = _by_kind(finished, SpanKind.CLIENT)
    models = [dict(s.attributes or {})["switchboard.model"] for s in upstream]
    assert models.count("fake/broken") == 2 and models.count("fake/answer") == 1  # a retry each
    for span in upstream:
        assert span.parent is not None and span.parent.span_id == request.context.span_id
        assert dict(span.attributes or {})["gen_ai.provider.name"] == "openai"
    failed = [s for s in upstream if dict(s.attributes or {})["switchboard.model"] == "fake/broken"]
    assert all(dict(s.attributes or {})["error.type"] == "upstream_unavailable" for s in failed)


def test_spend_made_while_redis_is_down_is_recorded_when_it_returns(
    service: str, redis: RedisProcess
) -> None:
    key_id, key = _key(service, budget_usd=1.0)
    with httpx.stream("POST", f"{service}/v1/chat/completions", headers=key, timeout=30,
                      json=_chat("fake/stream", stream=True)) as reply:  # fmt: skip
        assert reply.status_code == 200
        lines = reply.iter_lines()
        assert next(line for line in lines if line.startswith("data: "))
        redis.stop(kill=True)  # between reserve (done) and settle (at the end of the stream)
        events = [line for line in lines if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]"
    assert all("error" not in json.loads(e[6:]) for e in events[:-1])
    redis.start()
    expected = (50 * 1.0 + fake_upstream.WORDS * 2.0) / 1e6
    assert _until(lambda: _spend(service, key_id) > 0), "the settlement was lost"
    assert _spend(service, key_id) == pytest.approx(expected, rel=1e-6)
