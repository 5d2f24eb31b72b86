"""Schemathesis over Switchboard's own OpenAPI: no input gives a 5xx, every error is an envelope.

The real app runs under uvicorn on loopback with fake providers (``tests.fake_upstream``: the
models answer, transcription says "what is this"), so no model server is needed. Every operation
of the API (chat, route, feedback, models, admin with the admin key, the glasses endpoint's
multipart form, health) gets a bounded number of generated requests, valid and invalid ones.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings

from app.gateway.local_servers import free_port
from app.main import create_app
from app.settings import Settings
from tests import fake_upstream
from tests.inprocess import catalog
from tests.processes import CACHE

ADMIN = "admin-key-for-the-fuzz-test-0123456789"
EXAMPLES = int(os.environ.get("SWITCHBOARD_FUZZ_EXAMPLES", "25"))


def _settings(fake: str, tmp: Path) -> Settings:
    return Settings(
        catalog=catalog(fake, tmp / "catalog.yaml"),
        cache_dir=CACHE,
        admin_key=ADMIN,
        manage_local=False,
        transcription="openai",
        transcription_base_url=f"{fake}/transcribe/v1",
        cache_ttl_s=60,
    )


# The schema is the app's own; building the app does not start it (no lifespan runs here).
schema = schemathesis.openapi.from_dict(create_app(Settings()).openapi()).exclude(
    path_regex="^/(ui|metrics)"
)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("fuzz")
    with fake_upstream.fake_upstream() as fake:
        port = free_port()
        app = create_app(_settings(fake, tmp))
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 120
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started, "switchboard did not start"
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            thread.join(timeout=10)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_input_gives_a_5xx_and_every_error_is_an_envelope(
    case: schemathesis.Case, service: str
) -> None:
    headers = {}
    if case.path.startswith("/v1/admin"):  # past the admin check (bad keys are tried elsewhere)
        headers["authorization"] = f"Bearer {ADMIN}"
    if isinstance(case.body, dict) and isinstance(case.body.get("model"), str):
        case.body["model"] = "auto"  # a made-up model name only ever gets the same 404
    response = case.call(base_url=service, headers=headers, timeout=60)
    if response.status_code >= 400:
        body = response.json()
        error = body["error"]
        if case.path.startswith("/v1/messages"):  # Anthropic's API: Anthropic's error shape
            assert body["type"] == "error" and set(error) == {"type", "message"}, response.text
        else:
            assert set(error) == {"message", "type", "param", "code"}, response.text
        assert isinstance(error["message"], str) and error["message"]
        if response.status_code in (429, 503):
            assert "retry-after" in response.headers
    # the one 5xx a request can earn: its own max_latency_ms ran out before the model answered
    own_deadline = response.status_code == 504 and "deadline" in response.text
    assert response.status_code < 500 or own_deadline, (response.text[:500], case.as_curl_command())
