"""Speech to text: real Whisper on spoken questions, and the OpenAI wire format byte for byte.

The speech is synthesised by ``espeak-ng`` and brought down to what the glasses send (8 kHz,
8-bit unsigned, mono) here with numpy and ``wave``, independently of ``app.glasses.audio``.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import shutil
import subprocess
import wave
from collections.abc import AsyncIterator, Callable
from email import policy
from email.parser import BytesParser
from pathlib import Path

import httpx
import numpy as np
import pytest

from adapters.transcription import (
    WHISPER_BASE,
    LocalWhisper,
    ModelFile,
    OpenAITranscriber,
    PackagedModel,
    Transcript,
    assemble,
    build_transcriber,
)
from app.errors import (
    ConfigError,
    InvalidUpload,
    UpstreamAuthError,
    UpstreamBusy,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from app.settings import Settings
from tests.adapters.wire import KEY, endpoint
from tests.app.test_audio import wav_bytes
from tests.processes import CACHE

VOICE, WORDS_PER_MINUTE = "en-us+f2", 130
QUESTIONS = {  # what is said -> three words it is recognised by (two are enough)
    "what breed is that dog": {"what", "breed", "dog"},
    "will it rain this afternoon": {"will", "rain", "afternoon"},
    "how many grams in an ounce": {"many", "grams", "ounce"},
}


def spoken(text: str, voice: str = VOICE) -> tuple[np.ndarray, int]:
    """``text`` spoken by espeak-ng: float samples in [-1, 1] and their rate (22.05 kHz)."""
    # scripts/test.sh installs it; a missing voice must fail the run, not hide the feature.
    assert shutil.which("espeak-ng"), "espeak-ng is not installed (apt-get install espeak-ng)"
    command = ["espeak-ng", "-v", voice, "-s", str(WORDS_PER_MINUTE), "-w", "/dev/stdout", text]
    raw = subprocess.run(command, capture_output=True, check=True).stdout
    with wave.open(io.BytesIO(raw)) as wav:
        rate = wav.getframerate()
        samples = np.frombuffer(wav.readframes(wav.getnframes()), "<i2") / 32768
    return samples, rate


def as_glasses_wav(samples: np.ndarray, rate: int) -> bytes:
    """8 kHz, 8-bit unsigned, mono: low-pass below 4 kHz (windowed sinc), then decimate."""
    cutoff, n = 3600 / rate, np.arange(-64, 65)
    taps = 2 * cutoff * np.sinc(2 * cutoff * n) * np.hanning(len(n))
    smooth = np.convolve(samples, taps / taps.sum(), mode="same")
    points = np.arange(0, len(samples) - 1, rate / 8000)
    return wav_bytes(np.interp(points, np.arange(len(samples)), smooth), 8000, width=1)


def as_studio_wav(samples: np.ndarray, rate: int) -> bytes:
    """44.1 kHz, 16-bit, stereo (upsampling by interpolation adds nothing above 11 kHz)."""
    points = np.arange(0, len(samples) - 1, rate / 44_100)
    mono = np.interp(points, np.arange(len(samples)), samples)
    return wav_bytes(np.stack([mono, 0.8 * mono], axis=1), 44_100)


def words(text: str) -> set[str]:
    return set(re.sub(r"[^a-z' ]", " ", text.lower()).split())


@pytest.fixture(scope="module")
async def whisper() -> AsyncIterator[LocalWhisper]:
    import faster_whisper  # noqa: F401 - the `local` extra; a missing one fails, not skips

    local = LocalWhisper(CACHE, max_seconds=120)
    await local.warm()
    yield local
    await local.aclose()


@pytest.fixture(scope="module")
async def heard(whisper: LocalWhisper) -> dict[str, Transcript]:
    """Each question, recorded as the glasses record it, transcribed once."""
    return {q: await whisper.transcribe(as_glasses_wav(*spoken(q))) for q in QUESTIONS}


@pytest.mark.parametrize("question", QUESTIONS)
def test_glasses_recordings_are_understood(question: str, heard: dict[str, Transcript]) -> None:
    transcript = heard[question]
    assert len(QUESTIONS[question] & words(transcript.text)) >= 2, transcript.text
    assert transcript.text == transcript.text.strip()
    assert transcript.language == "en" and transcript.model == "whisper-base"
    assert 1.5 < transcript.duration_s < 3.5


@pytest.mark.parametrize("question", QUESTIONS)
def test_other_questions_do_not_match(question: str, heard: dict[str, Transcript]) -> None:
    others = [t.text for q, t in heard.items() if q != question]
    assert all(not QUESTIONS[question] & words(text) for text in others), others


async def test_a_44_1_khz_stereo_recording_is_understood(whisper: LocalWhisper) -> None:
    samples, rate = spoken("will it rain this afternoon")
    transcript = await whisper.transcribe(as_studio_wav(samples, rate), filename="take.wav")
    assert len({"will", "rain", "afternoon"} & words(transcript.text)) >= 2, transcript.text
    assert transcript.duration_s == pytest.approx(len(samples) / rate, abs=0.01)


async def test_a_cancelled_request_does_not_break_the_queue(whisper: LocalWhisper) -> None:
    audio = as_glasses_wav(*spoken("what breed is that dog"))
    abandoned = asyncio.create_task(whisper.transcribe(audio))
    await asyncio.sleep(0.05)
    abandoned.cancel()
    both = await asyncio.gather(whisper.transcribe(audio), whisper.transcribe(audio))
    assert both[0] == both[1] and "dog" in words(both[0].text)


async def test_a_bad_upload_is_refused_before_any_model_work(tmp_path: Path) -> None:
    local = LocalWhisper(tmp_path / "cache", max_seconds=120)
    with pytest.raises(InvalidUpload) as caught:
        await local.transcribe(b"OggS\x00\x02 not a wav")
    assert caught.value.param == "audio"
    assert not (tmp_path / "cache").exists()  # nothing assembled, nothing loaded


# --- the packaged weights -------------------------------------------------------------------


def test_weights_are_assembled_once_and_verified(tmp_path: Path) -> None:
    __import__(WHISPER_BASE.packages[0])  # installed by the `local` extra
    directory = assemble(WHISPER_BASE, tmp_path)
    assert directory == tmp_path / "whisper-base"
    assert (directory / "model.bin").stat().st_size == 145_217_532
    assert [p.name for p in tmp_path.iterdir()] == ["whisper-base"]  # no staging left behind
    stamp = (directory / "model.bin").stat().st_mtime_ns
    assert assemble(WHISPER_BASE, tmp_path) == directory
    assert (directory / "model.bin").stat().st_mtime_ns == stamp  # reused, not rewritten
    (directory / "model.bin").write_bytes(b"half a model")
    assemble(WHISPER_BASE, tmp_path)  # a damaged copy is replaced
    assert (directory / "model.bin").stat().st_size == 145_217_532


def _catalog_model(sha256: str) -> PackagedModel:
    """A one-file 'model' made of a real package resource (the bundled catalog, twice)."""
    piece = ("app", "data/catalog.yaml")
    size = 2 * len(Path(__file__).parents[2].joinpath("app/data/catalog.yaml").read_bytes())
    return PackagedModel("joined", {"joined.yaml": ModelFile((piece, piece), size, sha256)})


def test_weights_that_do_not_match_the_pins_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not match the pinned weights"):
        assemble(_catalog_model("0" * 64), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_missing_weight_packages_are_named(tmp_path: Path) -> None:
    model = PackagedModel("gone", {"model.bin": ModelFile((("no_such_pkg_x", "m"),), 1, "0")})
    with pytest.raises(ConfigError, match=r"no_such_pkg_x.*switchboard\[local\]"):
        assemble(model, tmp_path)


# --- the OpenAI-compatible API --------------------------------------------------------------

AUDIO = wav_bytes(np.zeros(8000), 8000, width=1)  # one second of 8 kHz silence


def form(request: httpx.Request) -> dict[str, tuple[str | None, str, bytes]]:
    """The multipart form of ``request``: field -> (filename, content type, bytes)."""
    head = f"content-type: {request.headers['content-type']}\r\n\r\n".encode()
    message = BytesParser(policy=policy.HTTP).parsebytes(head + request.content)
    assert message.is_multipart()
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        assert isinstance(name, str) and isinstance(payload, bytes)
        fields[name] = (part.get_filename(), part.get_content_type(), payload)
    return fields


def openai_with(
    handler: Callable[[httpx.Request], httpx.Response], *, key: str | None = KEY
) -> OpenAITranscriber:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return OpenAITranscriber(
        endpoint("https://api.groq.com/openai/v1/", "whisper-large-v3-turbo", key=key),
        client,
        max_seconds=120,
    )


async def test_openai_request_shape_and_reply() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"text": "  What breed is that dog?\n"})

    transcript = await openai_with(handler).transcribe(AUDIO, filename="clip.wav")
    assert transcript == Transcript("What breed is that dog?", None, 1.0, "whisper-large-v3-turbo")
    (request,) = sent
    assert request.method == "POST"
    assert str(request.url) == "https://api.groq.com/openai/v1/audio/transcriptions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert form(request) == {
        "model": (None, "text/plain", b"whisper-large-v3-turbo"),
        "response_format": (None, "text/plain", b"json"),
        "file": ("clip.wav", "audio/wav", AUDIO),  # the original bytes, untouched
    }
    assert request.extensions["timeout"]["connect"] == 5.0


async def test_openai_names_the_file_as_a_wav_and_reads_verbose_replies() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"text": "Hola", "language": "spanish", "duration": 1})

    transcriber = openai_with(handler, key=None)
    transcript = await transcriber.transcribe(
        AUDIO, filename="../recording", content_type="audio/x-wav"
    )
    assert (transcript.text, transcript.language) == ("Hola", "spanish")
    assert form(sent[0])["file"][:2] == ("recording.wav", "audio/x-wav")
    assert "authorization" not in sent[0].headers


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, UpstreamAuthError), (429, UpstreamRateLimited), (500, UpstreamUnavailable)],
)
async def test_openai_errors_are_typed_and_never_carry_the_key(
    status: int, error: type[UpstreamError]
) -> None:
    body = {"error": {"message": f"Incorrect API key provided: {KEY}", "type": "x"}}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body, headers={"retry-after": "3"})

    with pytest.raises(error) as caught:
        await openai_with(handler).transcribe(AUDIO)
    assert type(caught.value) is error
    assert caught.value.message.startswith(f"api.groq.com answered HTTP {status}")
    assert KEY not in str(caught.value) and KEY not in json.dumps(caught.value.envelope())
    assert "[redacted]" in caught.value.message
    if status == 429:
        assert caught.value.retry_after == 3.0


async def test_openai_transport_failures_and_garbage_replies() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(UpstreamUnavailable, match=r"cannot connect to api\.groq\.com"):
        await openai_with(refuse).transcribe(AUDIO)

    def garbage(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>gateway</html>")

    with pytest.raises(UpstreamError, match="a transcription Switchboard cannot read"):
        await openai_with(garbage).transcribe(AUDIO)


async def test_openai_refuses_a_bad_upload_without_calling_out() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request should be sent")

    with pytest.raises(InvalidUpload, match="not a WAV"):
        await openai_with(handler).transcribe(b"\xff\xfb\x90\x00 an mp3 frame")


# --- configuration --------------------------------------------------------------------------


async def test_settings_turn_transcription_off_or_local(tmp_path: Path) -> None:
    import faster_whisper  # noqa: F401 - the `local` extra; a missing one fails, not skips

    async with httpx.AsyncClient() as http:
        assert build_transcriber(Settings(transcription="off"), http, tmp_path) is None
        local = build_transcriber(Settings(max_audio_seconds=30), http, tmp_path)
    assert isinstance(local, LocalWhisper) and local.name == "local"
    assert local.max_seconds == 30 and local.cache_dir == tmp_path


async def test_settings_point_the_openai_transcriber_anywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"text": "ok"})

    monkeypatch.setenv("SWITCHBOARD_TEST_STT_KEY", KEY)
    settings = Settings(
        transcription="openai",
        transcription_base_url="http://127.0.0.1:8009/v1",
        transcription_model="Systran/faster-whisper-small",
        transcription_api_key_env="SWITCHBOARD_TEST_STT_KEY",
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        remote = build_transcriber(settings, http, tmp_path)
        assert remote is not None and remote.name == "openai"
        transcript = await remote.transcribe(AUDIO)
    assert transcript.model == "Systran/faster-whisper-small"
    assert str(sent[0].url) == "http://127.0.0.1:8009/v1/audio/transcriptions"
    assert sent[0].headers["authorization"] == f"Bearer {KEY}"


async def test_the_queue_for_the_speech_model_is_bounded_and_has_a_deadline(
    whisper: LocalWhisper,
) -> None:
    audio = as_glasses_wav(*spoken("what breed is that dog"))
    whisper.max_waiting = 1
    try:
        running = asyncio.create_task(whisper.transcribe(audio))
        await asyncio.sleep(0.05)  # it has the turn now
        waiting = asyncio.create_task(whisper.transcribe(audio, within_s=0.05))
        await asyncio.sleep(0)
        with pytest.raises(UpstreamBusy):  # one is waiting already: the next is refused
            await whisper.transcribe(audio)
        with pytest.raises(UpstreamTimeout):  # its time ran out before its turn came
            await waiting
        assert "dog" in words((await running).text)
    finally:
        whisper.max_waiting = 4
