"""Test-wide setup: the loopback guard, and the real servers shared by the suite."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests import loopback_guard

os.environ.setdefault("HF_HUB_OFFLINE", "1")
loopback_guard.install()


@pytest.fixture(scope="session")
def llama_url() -> Iterator[str]:
    from tests.processes import llama_server

    with llama_server() as url:
        yield url
