"""Switchboard as a user meets it: `switchboard serve` with no configuration at all.

The bundled catalog starts the real llama.cpp server (Qwen2.5-Coder-0.5B-Instruct) as a child;
no provider keys are set, so `auto` must be answered by the local model, and its answers must
make sense. Driven with the official SDK.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.processes import DEFAULT_LOCAL, switchboard

LOCAL = DEFAULT_LOCAL
HELLO = [{"role": "user", "content": "Say hello in one short sentence."}]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("sb") / "switchboard.log"
    # A generous glasses deadline: a busy CI machine must not time out the README example.
    env = {"SWITCHBOARD_MAX_BODY_BYTES": "200000", "SWITCHBOARD_NOA_DEADLINE_S": "60"}
    with switchboard(env, log) as url:
        yield url


@pytest.fixture()
def client(service: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{service}/v1", api_key="unused", max_retries=0)


def test_auto_is_answered_by_the_local_model_with_routing_headers(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=HELLO, temperature=0, max_tokens=24
    )
    completion = raw.parse()
    assert completion.model == LOCAL
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    assert raw.headers["x-switchboard-model"] == LOCAL
    assert raw.headers["x-switchboard-decision-id"].startswith("dec_")
    assert float(raw.headers["x-switchboard-overhead-ms"]) >= 0
    assert float(raw.headers["x-switchboard-cost-usd"]) == 0.0  # local model is free
    assert raw.headers["x-switchboard-fallbacks"] == ""


EVERYDAY = [
    ("What is the capital of France?", ["paris"]),
    ("What is 12 times 12?", ["144"]),
    ("Who wrote Romeo and Juliet?", ["shakespeare"]),
    ('Translate "good morning" into French.', ["bonjour"]),
    ("Rewrite this more politely: 'Send me the report now.'", ["please", "could you", "would you"]),
    ("Write a Python function that returns the sum of a list of numbers.", ["def ", "return"]),
]


@pytest.mark.parametrize(("question", "expected"), EVERYDAY, ids=[q for q, _ in EVERYDAY])
def test_the_default_model_answers_everyday_requests(
    client: openai.OpenAI, question: str, expected: list[str]
) -> None:
    """Nothing configured: `auto` reaches the local model, and what it says is right."""
    completion = client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": question}], temperature=0,
        max_tokens=120,
    )  # fmt: skip
    assert completion.model == LOCAL
    answer = (completion.choices[0].message.content or "").lower()
    assert not answer.startswith(question.lower()[:20])  # a base model echoes the question
    needed = all if question.startswith("Write a Python") else any
    assert needed(word in answer for word in expected), answer


def test_same_request_at_temperature_zero_is_deterministic(client: openai.OpenAI) -> None:
    answers = {
        client.chat.completions.create(model=LOCAL, messages=HELLO, temperature=0, max_tokens=16)
        .choices[0]
        .message.content
        for _ in range(2)
    }
    assert len(answers) == 1


def test_stream_with_usage_ends_with_usage_chunk_and_done(
    client: openai.OpenAI, service: str
) -> None:
    chunks = list(
        client.chat.completions.create(
            model="auto", messages=HELLO, temperature=0, max_tokens=24, stream=True,
            stream_options={"include_usage": True},
        )
    )  # fmt: skip
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    assert all(c.model == LOCAL for c in chunks)
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0

    body = {"model": "auto", "messages": HELLO, "max_tokens": 8, "stream": True}
    with httpx.stream("POST", f"{service}/v1/chat/completions", json=body, timeout=60) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["x-switchboard-model"] == LOCAL
        lines = [line for line in r.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    assert all(line.startswith("data: ") for line in lines)
    assert not any('"usage"' in line for line in lines)  # not asked for, not sent


def test_unknown_model_is_404_and_keyless_model_is_unavailable(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="no-such-model", messages=HELLO)
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.APIStatusError) as keyless:
        client.chat.completions.create(model="openai/gpt-4o", messages=HELLO)
    assert keyless.value.status_code == 503
    assert "OPENAI_API_KEY is not set" in keyless.value.message


def test_route_explains_every_candidate(service: str) -> None:
    body = {"model": "auto", "messages": HELLO}
    decision = httpx.post(f"{service}/v1/route", json=body).json()
    catalog = [
        m["id"]
        for m in httpx.get(f"{service}/v1/models").json()["data"]
        if m["id"] != "auto" and m["owned_by"] != "switchboard"  # routing, and its own encoder
    ]
    assert decision["model"] == LOCAL
    assert decision["capabilities"] == []
    assert sorted(c["model"] for c in decision["candidates"]) == sorted(catalog)
    by_model = {c["model"]: c for c in decision["candidates"]}
    assert by_model[LOCAL]["eligible"] and by_model[LOCAL]["reason"] == "chosen"
    gpt = by_model["openai/gpt-4o"]
    assert not gpt["eligible"] and "OPENAI_API_KEY" in gpt["reason"]
    assert gpt["quality"] > by_model[LOCAL]["quality"]  # it would win if it had a key
    assert gpt["cost_usd"] > 0


def test_a_photo_question_with_no_model_that_can_see_is_answered_blind(service: str) -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    message = {"role": "user", "content": [{"type": "text", "text": "What is this?"}, image]}
    body = {"model": "auto", "messages": [message], "max_tokens": 8}
    decision = httpx.post(f"{service}/v1/route", json=body).json()
    assert decision["capabilities"] == ["vision"]  # inferred: preferred, never required
    assert decision["model"] == LOCAL and decision["unmet_capabilities"] == ["vision"]
    local = next(c for c in decision["candidates"] if c["model"] == LOCAL)
    assert local["eligible"] and local["capability_bonus"] == 0.0
    reply = httpx.post(f"{service}/v1/chat/completions", json=body, timeout=120)
    assert reply.status_code == 200, reply.text
    asked = {**body, "switchboard": {"capabilities": ["vision"]}}  # asked for: a hard need
    refused = httpx.post(f"{service}/v1/chat/completions", json=asked)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "no_eligible_model"


def test_allow_list_and_max_cost_constrain_the_choice(service: str) -> None:
    only_hosted = {"model": "auto", "messages": HELLO, "switchboard": {"models": ["openai/gpt-4o"]}}
    decision = httpx.post(f"{service}/v1/route", json=only_hosted).json()
    assert decision["model"] is None
    local = next(c for c in decision["candidates"] if c["model"] == LOCAL)
    assert local["reason"] == "not in the request's allow-list"


def test_models_health_ready_metrics(service: str, client: openai.OpenAI) -> None:
    client.chat.completions.create(model="auto", messages=HELLO, max_tokens=4)
    models = {m.id: m for m in client.models.list().data}
    assert "auto" in models and LOCAL in models
    listing = httpx.get(f"{service}/v1/models").json()["data"]
    status = {m["id"]: m.get("switchboard", {}).get("available") for m in listing}
    assert status[LOCAL] is True and status["openai/gpt-4o"] is False
    assert httpx.get(f"{service}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{service}/readyz").status_code == 200
    metrics = httpx.get(f"{service}/metrics").text
    assert f'switchboard_requests_total{{model="{LOCAL}",status="ok"}}' in metrics
    assert "switchboard_overhead_seconds_bucket" in metrics
    assert f'switchboard_tokens_total{{kind="completion",model="{LOCAL}"}}' in metrics


BAD_BODIES = [
    (b"{not json", "JSON"),
    (b'{"model": "auto"}', "messages"),
    (b'{"model": "auto", "messages": []}', "messages"),
    (b'{"model": "auto", "messages": [{"role": "wizard", "content": "hi"}]}', "role"),
    (
        b'{"model": "auto", "messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}',
        "temperature",
    ),
    (b'{"model": "auto", "messages": [{"role": "user", "content": "hi"}], "n": 2}', "n"),
    (b'{"model": 5, "messages": [{"role": "user", "content": "hi"}]}', "model"),
    (b"[1, 2, 3]", ""),
]


@pytest.mark.parametrize(("body", "mentions"), BAD_BODIES)
def test_bad_input_gets_a_clear_4xx_envelope(service: str, body: bytes, mentions: str) -> None:
    reply = httpx.post(
        f"{service}/v1/chat/completions", content=body, headers={"content-type": "application/json"}
    )
    assert 400 <= reply.status_code < 500
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert mentions in error["message"]
    assert "Traceback" not in reply.text


def test_oversized_body_is_413(service: str) -> None:
    big = {"model": "auto", "messages": [{"role": "user", "content": "x" * 300_000}]}
    reply = httpx.post(f"{service}/v1/chat/completions", json=big)
    assert reply.status_code == 413
    assert reply.json()["error"]["code"] == "payload_too_large"


def test_unknown_path_is_an_envelope_too(service: str) -> None:
    reply = httpx.get(f"{service}/v1/nothing-here")
    assert reply.status_code == 404
    assert "error" in reply.json()


def test_log_has_no_traceback(service: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    logs = list(Path(tmp_path_factory.getbasetemp()).glob("sb*/switchboard.log"))
    assert logs and "Traceback" not in logs[0].read_text()


def _readme_blocks(language: str) -> list[str]:
    text = (Path(__file__).parents[1] / "README.md").read_text()
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def test_readme_curl_examples_work(service: str) -> None:
    """The README never lies: its curl examples run against a live service."""
    blocks = [b for b in _readme_blocks("bash") if "curl" in b and "127.0.0.1:8000" in b]
    assert len(blocks) >= 3
    for block in blocks:
        script = block.replace("http://127.0.0.1:8000", service)
        done = subprocess.run(
            ["bash", "-c", script], capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, done.stderr
        body = json.loads(done.stdout)
        assert not body.get("error")  # a Responses object carries "error": null
        models = (
            body.get("model"),
            body.get("switchboard", {}).get("model"),
            body.get("debug", {}).get("model"),
        )  # chat, route, and /noa answers
        assert LOCAL in models or body.get("model") == "local/all-minilm-l6-v2"  # embeddings


def test_readme_python_examples_work(service: str) -> None:
    """Each SDK example (openai, anthropic) prints the model that answered: the local one."""
    blocks = [b for b in _readme_blocks("python") if "127.0.0.1:8000" in b]
    assert len(blocks) >= 2
    for block in blocks:
        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            exec(block.replace("http://127.0.0.1:8000", service), {})
        assert output.getvalue().startswith(LOCAL)
