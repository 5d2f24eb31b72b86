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


@pytest.fixture(scope="module")
def fake() -> Iterator[str]:
    """The fake OpenAI-compatible upstream of tests/fake_upstream.py, one per test module."""
    from tests.fake_upstream import fake_upstream

    with fake_upstream() as url:
        yield url
