"""Feedback that improves routing, shared by two workers on one real Redis, and its reset."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
import yaml

from tests.processes import switchboard
from tests.redis_server import redis_server

ADMIN = {"authorization": "Bearer admin-for-feedback"}
COOKING = ["How long do I boil an egg for a soft yolk?", "What temperature do I roast a chicken at?",
           "How do I make a simple tomato sauce?", "How do I cook rice so it is not sticky?",
           "How long should pasta boil?", "How do I keep basil fresh?",
           "Can I freeze cooked rice?", "How do I make pancakes fluffy?"]  # fmt: skip


@pytest.fixture(scope="module")
def workers(llama_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    tmp = tmp_path_factory.mktemp("feedback")
    row = {"adapter": "openai_compat", "base_url": llama_url, "upstream_model": "qwen2.5-coder-0.5b-instruct",
           "local": True, "context_window": 2048, "price": {"input_per_mtok": 1.0, "output_per_mtok": 1.0}}  # fmt: skip
    catalog = {"models": [{"id": "model-a", **row, "profile": {"prior_quality": 0.7}},
                          {"id": "model-b", **row, "profile": {"prior_quality": 0.6}}]}  # fmt: skip
    (tmp / "catalog.yaml").write_text(yaml.safe_dump(catalog))
    with redis_server() as redis_proc:
        env = {"SWITCHBOARD_CATALOG": str(tmp / "catalog.yaml"), "SWITCHBOARD_REDIS_URL": redis_proc.url,
               "SWITCHBOARD_ADMIN_KEY": "admin-for-feedback", "SWITCHBOARD_CACHE_TTL_S": "60"}  # fmt: skip
        with switchboard(env, tmp / "a.log") as a, switchboard(env, tmp / "b.log") as b:
            yield a, b


def _route(url: str, text: str) -> dict[str, object]:
    body = {"model": "auto", "messages": [{"role": "user", "content": text}]}
    decision: dict[str, object] = httpx.post(f"{url}/v1/route", json=body).json()
    return decision


def test_feedback_moves_similar_queries_only_and_reset_undoes_it(workers: tuple[str, str]) -> None:
    a, b = workers
    cooking, code = (
        "How long should I boil an egg?",
        "Write a Python function that reverses a list.",
    )
    assert _route(b, cooking)["model"] == "model-a" and _route(b, code)["model"] == "model-a"

    for i, text in enumerate(COOKING):  # users on worker A: A fails at cooking, B gets it right
        decision = _route(a, text)
        verdict = "down" if decision["model"] == "model-a" else "up"
        reply = httpx.post(
            f"{a}/v1/feedback", json={"decision_id": decision["decision_id"], "thumbs": verdict}
        )
        assert reply.status_code == 200 and reply.json()["accepted"] is True
        if i == 0:  # one voice is not enough to move routing
            assert _route(a, cooking)["model"] == "model-a"

    httpx.post(
        f"{b}/v1/route", json={"model": "auto", "messages": [{"role": "user", "content": "x"}]}
    )
    time.sleep(1.1)  # worker B syncs feedback at most once a second
    assert _route(b, cooking)["model"] == "model-b"  # similar queries moved away from A ...
    assert _route(b, code)["model"] == "model-a"  # ... unrelated ones did not

    assert httpx.post(f"{b}/v1/admin/profiles/reset", headers=ADMIN).status_code == 200
    time.sleep(1.1)
    assert _route(a, cooking)["model"] == "model-a"
    assert _route(b, cooking)["model"] == "model-a"


def test_feedback_is_idempotent_and_validated(workers: tuple[str, str]) -> None:
    a, b = workers
    decision = _route(a, "What is a good name for a cat?")
    body = {"decision_id": decision["decision_id"], "score": 0.2}
    assert httpx.post(f"{a}/v1/feedback", json=body).json()["accepted"] is True
    again = httpx.post(f"{b}/v1/feedback", json=body).json()  # the other worker knows it too
    assert again["accepted"] is False and again["duplicate"] is True
    missing = httpx.post(f"{a}/v1/feedback", json={"decision_id": "dec_nope", "score": 1})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "decision_not_found"
    for bad in ({"decision_id": "x", "score": 2}, {"decision_id": "x"}, {"score": 1},
                {"decision_id": "x", "score": 1, "thumbs": "up"}):  # fmt: skip
        reply = httpx.post(f"{a}/v1/feedback", json=bad)
        assert reply.status_code == 400 and "error" in reply.json()
    correction = {
        "decision_id": _route(a, "Name a colour.")["decision_id"],
        "better_model": "model-b",
    }
    assert httpx.post(f"{a}/v1/feedback", json=correction).json()["accepted"] is True
    unknown = {"decision_id": _route(a, "Name a fruit.")["decision_id"], "better_model": "nobody"}
    assert httpx.post(f"{a}/v1/feedback", json=unknown).status_code == 400


def _key(url: str, name: str) -> dict[str, str]:
    admin = {"authorization": "Bearer admin-for-feedback"}
    created = httpx.post(f"{url}/v1/admin/keys", json={"name": name}, headers=admin)
    assert created.status_code == 201, created.text
    return {"authorization": f"Bearer {created.json()['key']}"}


def test_response_cache_is_shared_and_keyed(workers: tuple[str, str]) -> None:
    a, b = workers
    key = _key(a, "cache-user")
    body = {
        "model": "auto",
        "messages": [{"role": "user", "content": "Name a planet."}],
        "max_tokens": 4,
    }

    def cache(url: str, sent: dict[str, object], headers: dict[str, str]) -> str | None:
        reply = httpx.post(f"{url}/v1/chat/completions", json=sent, headers=headers, timeout=60)
        assert reply.status_code == 200, reply.text
        return reply.headers.get("x-switchboard-cache")

    first = httpx.post(f"{a}/v1/chat/completions", json=body, headers=key, timeout=60)
    second = httpx.post(f"{b}/v1/chat/completions", json=body, headers=key, timeout=60)
    assert first.headers["x-switchboard-cache"] == "miss"
    assert second.headers["x-switchboard-cache"] == "hit"  # on another worker
    assert second.json()["choices"] == first.json()["choices"]
    other = {**body, "messages": [{"role": "user", "content": "Name a planet that is not Earth."}]}
    assert cache(b, other, key) == "miss"
    assert cache(b, {**body, "temperature": 1.5}, key) == "miss"
    assert cache(b, body, _key(a, "someone-else")) == "miss"  # per key
    assert cache(b, body, {}) is None  # anonymous callers share nothing, so nothing is cached


def test_cache_hits_count_against_the_keys_rate_limit(workers: tuple[str, str]) -> None:
    a, b = workers
    admin = {"authorization": "Bearer admin-for-feedback"}
    created = httpx.post(f"{a}/v1/admin/keys", json={"name": "cached", "rpm": 2}, headers=admin)
    assert created.status_code == 201, created.text
    headers = {"authorization": f"Bearer {created.json()['key']}"}
    body = {"model": "auto", "messages": [{"role": "user", "content": "Name a colour."}],
            "max_tokens": 4}  # fmt: skip
    replies = [httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers, timeout=60)
               for url in (a, b, a)]  # fmt: skip
    assert [r.status_code for r in replies] == [200, 200, 429]
    assert replies[1].headers["x-switchboard-cache"] == "hit"
    assert replies[1].headers["x-ratelimit-remaining-requests"] == "0"
