"""A full Redis, run with the deployments' memory policy, keeps every key and budget.

The deployments cap Redis with ``--maxmemory`` and pick the policy for what happens at the cap
(``deploy/k8s/redis.yaml``, ``deploy/compose.yaml``). Budget holds and rate-limit windows carry
TTLs, so a ``volatile-*`` policy would evict them first and hand the caller money or requests
back; this test fills a real ``redis-server`` (started with the manifest's policy and a small cap)
with cache entries and checks what survives.
"""

from __future__ import annotations

from pathlib import Path

import redis
import yaml

from app.state import StateUnavailable, to_micro
from app.state.redis_store import RedisStore
from tests.redis_server import redis_server

MANIFEST = Path(__file__).parents[2] / "deploy" / "k8s" / "redis.yaml"
BLOB = b"x" * 64 * 1024


def _manifest_policy() -> str:
    statefulset = next(yaml.safe_load_all(MANIFEST.read_text()))
    args: list[str] = statefulset["spec"]["template"]["spec"]["containers"][0]["args"]
    return args[args.index("--maxmemory-policy") + 1]


async def test_a_full_redis_keeps_keys_budgets_and_rate_windows() -> None:
    policy = _manifest_policy()
    with redis_server(extra_args=("--maxmemory", "4mb", "--maxmemory-policy", policy)) as proc:
        store = RedisStore(proc.url)
        try:
            record, key = await store.issue_key("team", rpm=1000, budget_usd=10)
            assert await store.reserve(record.id, 1.5, 10.0)  # a call in flight: a hold, with TTL
            await store.hit(f"{record.id}:requests", 1, 1000, 60)  # a rate window, with TTL
            refused = 0
            for i in range(400):  # 25 MB of cache entries against a 4 MB cap
                try:
                    await store.cache_set(f"entry-{i}", BLOB, 3600)
                except StateUnavailable:
                    refused += 1
            raw = redis.Redis.from_url(proc.url)
            held, window = raw.get(f"sb:held:{record.id}"), raw.get(f"sb:rl:{record.id}:requests")
            raw.close()
            assert held == str(to_micro(1.5)).encode(), "the budget hold was evicted"
            assert window == b"1", "the rate-limit window was evicted"
            assert refused > 300, "Redis grew past its cap, or evicted cache entries to make room"
            found = await store.lookup_key(key)  # callers still authenticate at the cap
            assert found is not None and found.id == record.id
        finally:
            await store.aclose()
