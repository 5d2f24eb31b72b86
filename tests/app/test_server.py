"""``switchboard serve``: the serving stack it picks, and how many workers it runs."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from app.errors import ConfigError
from app.server import serving_stack, worker_count
from app.settings import Settings


def test_uvloop_and_httptools_serve_requests() -> None:
    assert serving_stack() == ("uvloop", "httptools")  # uvicorn[standard] is a dependency


def test_one_worker_per_core_only_when_state_is_shared(caplog: pytest.LogCaptureFixture) -> None:
    shared = Settings(redis_url=SecretStr("redis://127.0.0.1:6379/0"))
    assert worker_count(shared, None, cores=4) == 4
    assert worker_count(shared, 3, cores=4) == 3
    alone = Settings(redis_url=None)
    assert worker_count(alone, None, cores=4) == 1
    assert "set SWITCHBOARD_REDIS_URL to run one worker per core (4)" in caplog.text
    assert worker_count(alone, 1, cores=4) == 1


def test_several_workers_without_redis_are_refused() -> None:
    with pytest.raises(ConfigError, match="needs SWITCHBOARD_REDIS_URL"):
        worker_count(Settings(redis_url=None), 2, cores=4)
    with pytest.raises(ConfigError, match="at least 1"):
        worker_count(Settings(redis_url=None), 0)
