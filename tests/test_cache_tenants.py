"""Who shares cached answers: a key with itself, never anonymous callers with each other.

Without a key the service cannot tell callers apart, so a cache shared by all anonymous callers
would hand one person's answer (and whatever context it was built from) to another. Anonymous
calls are therefore never cached; keyed calls hit their own entries only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.inprocess import switchboard

ADMIN = "admin-key-for-the-cache-test-0123456789"
BODY = {"model": "auto", "messages": [{"role": "user", "content": "How do I boil an egg?"}]}


@pytest.fixture(scope="module")
async def client(
    fake: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    tmp = tmp_path_factory.mktemp("cache")
    async with switchboard(fake, tmp, cache_ttl_s=600, admin_key=ADMIN) as c:
        yield c


async def _key(client: httpx.AsyncClient, name: str) -> dict[str, str]:
    made = await client.post("/v1/admin/keys", json={"name": name},
                             headers={"authorization": f"Bearer {ADMIN}"})  # fmt: skip
    assert made.status_code == 201, made.text
    return {"authorization": f"Bearer {made.json()['key']}"}


async def test_anonymous_callers_never_share_cached_answers(client: httpx.AsyncClient) -> None:
    first = await client.post("/v1/chat/completions", json=BODY)
    second = await client.post("/v1/chat/completions", json=BODY)
    assert first.status_code == second.status_code == 200
    assert second.headers.get("x-switchboard-cache") != "hit"
    assert second.headers.get("x-switchboard-decision-id") != first.headers.get(
        "x-switchboard-decision-id"
    )


async def test_a_key_hits_its_own_entries_only(client: httpx.AsyncClient) -> None:
    alice, bob = await _key(client, "alice"), await _key(client, "bob")
    miss = await client.post("/v1/chat/completions", json=BODY, headers=alice)
    assert miss.headers["x-switchboard-cache"] == "miss"
    hit = await client.post("/v1/chat/completions", json=BODY, headers=alice)
    assert hit.headers["x-switchboard-cache"] == "hit"
    other = await client.post("/v1/chat/completions", json=BODY, headers=bob)
    assert other.headers["x-switchboard-cache"] == "miss"
