"""API keys, rate limits and budgets on real Redis, across two Switchboard workers.

Two `switchboard serve` processes share one `redis-server` and the real llama.cpp server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
import yaml

from tests.processes import switchboard
from tests.redis_server import RedisProcess, redis_server

ADMIN = "admin-secret-for-tests"
ADMIN_HEADERS = {"authorization": f"Bearer {ADMIN}"}
HELLO = [{"role": "user", "content": "Say hi."}]


@pytest.fixture(scope="module")
def redis_proc() -> Iterator[RedisProcess]:
    with redis_server(persistent=True) as process:
        yield process


@pytest.fixture(scope="module")
def workers(
    llama_url: str, redis_proc: RedisProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    tmp = tmp_path_factory.mktemp("keys")
    catalog = {"models": [{
        "id": "local/priced", "adapter": "openai_compat", "base_url": llama_url,
        "upstream_model": "qwen2.5-coder-0.5b-instruct", "local": True, "context_window": 2048,
        "price": {"input_per_mtok": 1000.0, "output_per_mtok": 2000.0},
        "profile": {"prior_quality": 0.5},
    }]}  # fmt: skip
    (tmp / "catalog.yaml").write_text(yaml.safe_dump(catalog))
    env = {"SWITCHBOARD_CATALOG": str(tmp / "catalog.yaml"), "SWITCHBOARD_REDIS_URL": redis_proc.url,
           "SWITCHBOARD_ADMIN_KEY": ADMIN}  # fmt: skip
    with switchboard(env, tmp / "a.log") as a, switchboard(env, tmp / "b.log") as b:
        yield a, b


def _key(url: str, **limits: object) -> tuple[str, str]:
    reply = httpx.post(f"{url}/v1/admin/keys", json={"name": "t", **limits}, headers=ADMIN_HEADERS)
    assert reply.status_code == 201, reply.text
    return reply.json()["id"], reply.json()["key"]


def _chat(url: str, key: str, **extra: object) -> httpx.Response:
    body = {"model": "auto", "messages": HELLO, "max_tokens": 5, "temperature": 0, **extra}
    return httpx.post(
        f"{url}/v1/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {key}"},
        timeout=60,
    )


def test_admin_endpoints_need_the_admin_key(workers: tuple[str, str]) -> None:
    a, b = workers
    assert httpx.get(f"{a}/v1/admin/keys").status_code == 401
    wrong = httpx.get(f"{a}/v1/admin/keys", headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json()["error"]["type"] == "authentication_error"
    key_id, key = _key(a, rpm=100)
    denied = httpx.get(f"{a}/v1/admin/keys", headers={"authorization": f"Bearer {key}"})
    assert denied.status_code == 403 and denied.json()["error"]["type"] == "permission_error"
    listed = httpx.get(f"{b}/v1/admin/keys", headers=ADMIN_HEADERS).json()["data"]
    assert key_id in [k["id"] for k in listed] and all("key" not in k for k in listed)
    assert httpx.get(f"{b}/v1/admin/keys/{key_id}", headers=ADMIN_HEADERS).json()["spend_usd"] == 0
    assert _chat(b, key).status_code == 200  # a key made on one worker works on the other
    assert httpx.delete(f"{a}/v1/admin/keys/{key_id}", headers=ADMIN_HEADERS).status_code == 200
    revoked = _chat(b, key)
    assert revoked.status_code == 401 and revoked.json()["error"]["code"] == "invalid_api_key"


def test_rate_limit_is_shared_by_both_workers(workers: tuple[str, str]) -> None:
    a, b = workers
    _, key = _key(a, rpm=3)
    replies = [_chat(url, key) for url in (a, b, a, b)]
    assert [r.status_code for r in replies] == [200, 200, 200, 429]
    limited = replies[-1]
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    assert replies[0].headers["x-ratelimit-limit-requests"] == "3"
    assert replies[2].headers["x-ratelimit-remaining-requests"] == "0"


def test_budget_holds_under_fifty_concurrent_calls(workers: tuple[str, str]) -> None:
    a, b = workers
    estimate = httpx.post(f"{a}/v1/route", json={"model": "auto", "messages": HELLO}).json()
    prompt = estimate["prompt_tokens"]
    per_call = (prompt * 1000.0 + 5 * 2000.0) / 1e6  # what admission reserves per call
    key_id, key = _key(a, budget_usd=round(per_call * 10.5, 6))

    async def fire() -> list[httpx.Response]:
        headers = {"authorization": f"Bearer {key}"}
        body = {"model": "auto", "messages": HELLO, "max_tokens": 5, "temperature": 0}
        async with httpx.AsyncClient(timeout=120) as client:
            calls = [client.post(f"{(a, b)[i % 2]}/v1/chat/completions", json=body, headers=headers)
                     for i in range(50)]  # fmt: skip
            return await asyncio.gather(*calls)

    replies = asyncio.run(fire())
    served = [r for r in replies if r.status_code == 200]
    refused = [r for r in replies if r.status_code != 200]
    assert 1 <= len(served) <= 10
    assert all(
        r.status_code == 429 and r.json()["error"]["code"] == "insufficient_quota" for r in refused
    )
    spent = sum(float(r.headers["x-switchboard-cost-usd"]) for r in served)
    recorded = httpx.get(f"{b}/v1/admin/keys/{key_id}", headers=ADMIN_HEADERS).json()["spend_usd"]
    assert abs(recorded - spent) < 1e-5


def test_streamed_calls_are_charged_from_their_usage(workers: tuple[str, str]) -> None:
    a, _ = workers
    key_id, key = _key(a)
    body = {"model": "auto", "messages": HELLO, "max_tokens": 5, "stream": True}
    with httpx.stream("POST", f"{a}/v1/chat/completions", json=body,
                      headers={"authorization": f"Bearer {key}"}, timeout=60) as reply:  # fmt: skip
        assert reply.status_code == 200
        list(reply.iter_lines())
    assert httpx.get(f"{a}/v1/admin/keys/{key_id}", headers=ADMIN_HEADERS).json()["spend_usd"] > 0


def test_redis_restart_keeps_serving_and_keeps_spend(
    workers: tuple[str, str], redis_proc: RedisProcess
) -> None:
    a, b = workers
    key_id, key = _key(a, rpm=1000)
    assert _chat(a, key).status_code == 200
    before = httpx.get(f"{a}/v1/admin/keys/{key_id}", headers=ADMIN_HEADERS).json()["spend_usd"]
    assert before > 0
    decision = httpx.post(f"{a}/v1/route", json={"model": "auto", "messages": HELLO}).json()
    feedback = {"decision_id": decision["decision_id"], "thumbs": "up"}
    assert httpx.post(f"{a}/v1/feedback", json=feedback).json()["accepted"] is True
    redis_proc.stop()
    try:
        # routing does not depend on Redis: calls are served (fail open), anonymous ones too
        assert _chat(a, key).status_code == 200
        assert httpx.post(f"{b}/v1/chat/completions", timeout=60,
                          json={"model": "auto", "messages": HELLO, "max_tokens": 3}).status_code == 200  # fmt: skip
        down = httpx.get(f"{a}/v1/admin/keys/{key_id}", headers=ADMIN_HEADERS)
        assert down.status_code == 503 and down.json()["error"]["code"] == "state_unavailable"
    finally:
        redis_proc.start()
    after = httpx.get(f"{b}/v1/admin/keys/{key_id}", headers=ADMIN_HEADERS).json()["spend_usd"]
    assert after >= before  # acknowledged spend survived the restart (appendfsync always)
    again = httpx.post(f"{b}/v1/feedback", json=feedback).json()
    assert again["duplicate"] is True  # ... and so did the acknowledged feedback
    assert _chat(b, key).status_code == 200
