"""Error shapes per path prefix: one mechanism for every error on an API's paths."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from app.errors import RateLimited, SwitchboardError
from app.http import errors as http_errors
from app.http.body_limit import BodyLimit
from app.http.errors import ErrorShape


def _custom(error: SwitchboardError) -> dict[str, object]:
    return {"type": "error", "error": {"status": error.status_code, "message": error.message}}


class Body(BaseModel):
    count: int


def _client() -> TestClient:
    app = FastAPI()
    shapes = [ErrorShape("/custom", _custom)]
    http_errors.install(app, shapes)
    app.add_middleware(BodyLimit, max_bytes=100, shapes=shapes)

    @app.post("/custom/limited")
    async def limited() -> None:
        raise RateLimited("slow down", retry_after=3)

    @app.post("/custom/typed")
    async def typed(body: Body) -> int:
        return body.count

    @app.post("/customer/limited")
    async def other() -> None:
        raise RateLimited("slow down")

    @app.post("/custom/bug")
    async def bug() -> None:
        raise RuntimeError("boom")

    return TestClient(app, raise_server_exceptions=False)


def test_errors_on_a_registered_prefix_use_its_shape() -> None:
    client = _client()
    limited = client.post("/custom/limited")
    assert limited.status_code == 429 and limited.headers["retry-after"] == "3"
    assert limited.json() == {"type": "error", "error": {"status": 429, "message": "slow down"}}
    invalid = client.post("/custom/typed", json={"count": "many"})
    assert invalid.status_code == 400 and invalid.json()["error"]["message"].startswith("count:")
    assert client.post("/custom/nowhere").json()["type"] == "error"  # an unknown route
    bug = client.post("/custom/bug")
    assert bug.status_code == 500 and bug.json()["error"]["message"] == "internal error"
    too_large = client.post("/custom/typed", content=b"x" * 200)  # refused by the middleware
    assert too_large.status_code == 413 and too_large.json()["error"]["status"] == 413


def test_other_paths_keep_the_openai_envelope() -> None:
    client = _client()
    too_large = client.post("/customer/limited", content=b"x" * 200)
    assert too_large.status_code == 413 and too_large.json()["error"]["code"] == "payload_too_large"
    reply = client.post("/customer/limited")  # a prefix is a path, not a string prefix
    assert reply.status_code == 429 and reply.headers["retry-after"] == "1"
    assert reply.json() == {"error": {"message": "slow down", "type": "rate_limit_error",
                                      "param": None, "code": "rate_limit_exceeded"}}  # fmt: skip
