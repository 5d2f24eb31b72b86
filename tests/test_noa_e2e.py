"""The glasses endpoint as the Frame app uses it: a real Switchboard, real speech, real photos.

Switchboard runs under uvicorn with a catalog of the real llama.cpp model (text only, free) and
two local fake providers that report what they received: a vision model and a web-search model.
Questions are spoken by espeak-ng and sent as 8 kHz 8-bit mono WAV, as the glasses record them;
photos are 720x720 JPEGs. The endpoint lives on a configured path behind a configured header.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from PIL import Image, ImageDraw

from tests import fake_upstream
from tests.adapters.test_transcription import as_glasses_wav, spoken
from tests.processes import switchboard

PATH = "/glasses/noa"
HEADER = {"x-glasses-key": "frame-secret-for-tests-1"}


def _row(model_id: str, base_url: str, prior: float, caps: list[str], price: float) -> dict:  # type: ignore[type-arg]
    return {
        "id": model_id,
        "adapter": "openai_compat",
        "base_url": base_url,
        "price": {"input_per_mtok": price, "output_per_mtok": price},
        "context_window": 8192,
        "capabilities": caps,
        "profile": {"prior_quality": prior},
    }


@pytest.fixture(scope="module")
def service(llama_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("noa")
    with fake_upstream.fake_upstream() as fake:
        catalog = {
            "models": [
                {
                    **_row("local/qwen", llama_url, 0.6, [], 0.0),
                    "upstream_model": "qwen2.5-coder-0.5b-instruct",
                },
                _row("cloud/vision", f"{fake}/answer/cloud-vision/v1", 0.8, ["vision"], 30.0),
                _row("cloud/search", f"{fake}/answer/cloud-search/v1", 0.55, ["web_search"], 5.0),
            ]
        }
        path = tmp / "catalog.yaml"
        path.write_text(yaml.safe_dump(catalog))
        env = {
            "SWITCHBOARD_CATALOG": str(path),
            "SWITCHBOARD_NOA_PATH": PATH,
            "SWITCHBOARD_NOA_AUTH_HEADER": "x-glasses-key",
            "SWITCHBOARD_NOA_AUTH_VALUE": HEADER["x-glasses-key"],
            # Deadlines are tested in tests/app/test_dispatch.py; here a busy CI machine must
            # not turn a slow llama.cpp answer into a fallback.
            "SWITCHBOARD_NOA_DEADLINE_S": "60",
        }
        with switchboard(env, tmp / "switchboard.log") as url:
            yield url


def photo(scene: str = "a dog") -> bytes:
    image = Image.new("RGB", (720, 720), (90, 140, 70))
    draw = ImageDraw.Draw(image)
    draw.ellipse((200, 260, 520, 560), fill=(200, 160, 60))
    draw.text((20, 20), scene, fill=(255, 255, 255))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()


def ask(url: str, *, headers: dict[str, str] | None = None, files: dict | None = None,  # type: ignore[type-arg]
        **fields: str) -> httpx.Response:  # fmt: skip
    return httpx.post(f"{url}{PATH}", headers=HEADER if headers is None else headers,
                      files=files or {}, data=fields, timeout=120)  # fmt: skip


def _words(text: str) -> set[str]:
    return set("".join(c if c.isalnum() else " " for c in text.lower()).split())


def test_a_spoken_question_about_the_photo_goes_to_the_vision_model(
    service: str, tmp_path: Path
) -> None:
    audio = as_glasses_wav(*spoken("what breed is that dog"))
    reply = ask(service, files={"audio": ("a.wav", audio, "audio/wav"),
                                "image": ("p.jpg", photo(), "image/jpeg")},
                messages="[]", location="Oslo, Norway", time="Tue 25 Nov 2026 10:15")  # fmt: skip
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert len({"what", "breed", "dog"} & _words(body["user_prompt"])) >= 2, body["user_prompt"]
    debug = body["debug"]
    assert debug["model"] == "cloud/vision" and debug["capabilities_used"] == ["vision"]
    assert body["message"].startswith("cloud-vision saw 1 image(s)")
    assert debug["topic_changed"] is False
    assert debug["token_usage"]["total_tokens"] == 60
    timings = debug["timings"]
    assert timings["transcription_ms"] > 0 and timings["total_ms"] >= timings["transcription_ms"]


def test_a_spoken_question_not_about_the_photo_is_answered_without_it(
    service: str, tmp_path: Path
) -> None:
    audio = as_glasses_wav(*spoken("what is the capital of australia"))
    reply = ask(service, files={"audio": ("a.wav", audio, "audio/wav"),
                                "image": ("p.jpg", photo("a kitchen"), "image/jpeg")})  # fmt: skip
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert len({"capital", "of", "australia"} & _words(body["user_prompt"])) >= 2, body[
        "user_prompt"
    ]
    assert body["debug"]["model"] == "local/qwen"  # llama.cpp would refuse an image part
    assert body["debug"]["capabilities_used"] == []
    assert body["message"].strip()


def test_a_conversation_keeps_its_capability_on_follow_ups_and_reports_a_new_topic(
    service: str,
) -> None:
    history: list[dict[str, str]] = []
    capabilities, followups, topic_changes = [], [], []
    for question in (
        "will it rain this afternoon",
        "and tomorrow?",
        "how do I say hello in french",
    ):
        reply = ask(service, files={"image": ("p.jpg", photo("a street"), "image/jpeg")},
                    prompt=question, messages=json.dumps(history))  # fmt: skip
        assert reply.status_code == 200, reply.text
        body = reply.json()
        capabilities.append(body["debug"]["capabilities_used"])
        followups.append(body["debug"]["followup"])
        topic_changes.append(body["debug"]["topic_changed"])
        history += [{"role": "user", "content": question},
                    {"role": "assistant", "content": body["message"]}]  # fmt: skip
    assert capabilities == [["web_search"], ["web_search"], []]
    assert followups == [False, True, False]
    assert topic_changes == [False, False, True]


def test_the_time_is_answered_from_the_time_the_app_sent_not_searched(service: str) -> None:
    reply = ask(service, files={"image": ("p.jpg", photo("a street"), "image/jpeg")},
                prompt="what time is it", messages="[]", location="Oslo, Norway",
                time="Tue 25 Nov 2026 10:15")  # fmt: skip
    assert reply.status_code == 200, reply.text
    assert reply.json()["debug"]["capabilities_used"] == []


def test_promptless_turns_describe_the_photo(service: str) -> None:
    reply = ask(service, files={"image": ("p.jpg", photo(), "image/jpeg")}, promptless="true")
    assert reply.status_code == 200, reply.text
    assert reply.json()["debug"]["capabilities_used"] == ["vision"]
    assert reply.json()["user_prompt"] == ""


def test_the_configured_header_is_required(service: str) -> None:
    for headers in ({}, {"x-glasses-key": "wrong"}):
        reply = ask(service, headers=headers, prompt="hello")
        assert reply.status_code == 401
        assert reply.json()["error"]["type"] == "authentication_error"
        assert "frame-secret-for-tests-1" not in reply.text


def _truncated_jpeg() -> bytes:
    data = photo()
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    ("files", "fields", "status", "param"),
    [
        ({"audio": ("a.wav", b"RIFF....not really a wave file", "audio/wav")}, {}, 400, "audio"),
        ({"audio": ("a.mp3", b"ID3\x04\x00" + bytes(2000), "audio/mpeg")}, {}, 400, "audio"),
        ({"image": ("p.jpg", _truncated_jpeg(), "image/jpeg")}, {"prompt": "hi"}, 400, "image"),
        ({"image": ("p.jpg", b"GIF89a" + bytes(100), "image/gif")}, {"prompt": "hi"}, 400, "image"),
        ({"image": ("p.jpg", bytes(50 * 1024 * 1024), "image/jpeg")}, {"prompt": "hi"}, 413, None),
        ({}, {}, 400, "audio"),
        ({}, {"prompt": "hi", "messages": "{not json"}, 400, "messages"),
        ({}, {"prompt": "hi", "messages": '[{"role": "tool", "content": "x"}]'}, 400, "messages"),
        ({}, {"prompt": "hi", "temperature": "5"}, 400, "temperature"),
        ({}, {"promptless": "true"}, 400, "image"),
    ],
)
def test_bad_uploads_get_a_clear_4xx(
    service: str,
    files: dict,
    fields: dict[str, str],
    status: int,
    param: str | None,  # type: ignore[type-arg]
) -> None:
    reply = ask(service, files=files, **fields)
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert error["message"] and "Traceback" not in reply.text
    if param is not None:
        assert error["param"] == param


def test_the_endpoint_still_answers_after_bad_uploads(service: str) -> None:
    reply = ask(service, prompt="how do I say thank you in spanish")
    assert reply.status_code == 200 and reply.json()["message"].strip()


def test_openai_clients_get_the_same_capability_decision(service: str) -> None:
    """``/v1/route`` and ``/v1/chat/completions`` with OpenAI image parts (a data URL)."""
    data_url = "data:image/jpeg;base64," + base64.b64encode(photo()).decode()

    def body(text: str) -> dict[str, object]:
        parts = [{"type": "text", "text": text},
                 {"type": "image_url", "image_url": {"url": data_url}}]  # fmt: skip
        return {"model": "auto", "messages": [{"role": "user", "content": parts}]}

    routes = {text: httpx.post(f"{service}/v1/route", json=body(text), timeout=60).json()
              for text in ("what breed is that dog", "how many grams are in an ounce")}  # fmt: skip
    assert routes["what breed is that dog"]["capabilities"] == ["vision"]
    assert routes["what breed is that dog"]["model"] == "cloud/vision"
    assert routes["how many grams are in an ounce"]["capabilities"] == []
    reply = httpx.post(f"{service}/v1/chat/completions",
                       json={**body("what breed is that dog"), "max_tokens": 8}, timeout=60)  # fmt: skip
    assert reply.status_code == 200, reply.text
    assert reply.json()["choices"][0]["message"]["content"].startswith("cloud-vision saw 1 image")
