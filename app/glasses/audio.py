"""Uploaded WAV recordings: checked, measured, and turned into what Whisper listens to.

``read_wav`` parses the RIFF container and checks it (a real WAV, integer or float PCM, not
truncated, not empty, not longer than the caller allows) without converting anything, so a
transcriber that forwards the original bytes still refuses bad uploads the same way.
``to_whisper`` decodes the samples to float32 mono at 16 kHz.

Work is bounded before any sample is decoded: the rate must be one the FFT resampler handles
cheaply (any standard rate; a prime rate such as 383987 Hz made the FFT's length a large prime
and cost 1.7 s of CPU for 15 MB), and a recording holds at most ``MAX_SAMPLES`` samples (all
channels), so the float copies the resampler makes stay under about 200 MB.

The container is parsed here, not with the stdlib ``wave``: on Python 3.11 ``wave`` refuses
``WAVE_FORMAT_EXTENSIBLE``, which is how most recorders write 24/32-bit and multichannel files,
and it silently reads a short ``data`` chunk as a shorter recording. Every rejection is an
``InvalidUpload`` with ``param="audio"``.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from app.errors import InvalidUpload

Samples = NDArray[np.float32]

WHISPER_RATE = 16_000
MIN_RATE = 1_000
MAX_RATE = 384_000
MAX_SAMPLES = 1 << 24
"""Samples (frames x channels) a recording may hold: 16.8 M, 17 min of 16 kHz mono, 44 s at
384 kHz; more than the upload limit lets through at 8 bits."""
SMOOTH = (2, 3, 5, 7)
"""Prime factors the FFT's lengths may have: pocketfft runs these at full speed."""

_PCM = 0x0001
_FLOAT = 0x0003
_EXTENSIBLE = 0xFFFE
# Writers that stream (espeak-ng --stdout, recorders writing to a socket) cannot go back to fill
# in the data size, so they write a placeholder near 2 or 4 GiB: no real upload is that large.
_PLACEHOLDER_SIZE = 0x7FFF0000
_SUPPORTED = {(_PCM, 8), (_PCM, 16), (_PCM, 24), (_PCM, 32), (_FLOAT, 32), (_FLOAT, 64)}


@dataclass(frozen=True)
class WavInfo:
    """What a WAV header says about its recording, and where its samples are."""

    rate: int
    channels: int
    bits: int
    float_samples: bool
    frames: int
    data_offset: int

    @property
    def duration_s(self) -> float:
        return self.frames / self.rate

    @property
    def frame_bytes(self) -> int:
        return self.channels * self.bits // 8


def _invalid(message: str) -> InvalidUpload:
    return InvalidUpload(message, param="audio")


def _smooth(n: int) -> bool:
    """True when ``n`` has no prime factor above 7."""
    for p in SMOOTH:
        while n % p == 0:
            n //= p
    return n == 1


def _next_smooth(n: int) -> int:
    """The least 7-smooth integer at or above ``n`` (at most a few percent above it)."""
    while not _smooth(n):
        n += 1
    return n


def cheap_rate(rate: int, target: int = WHISPER_RATE) -> bool:
    """Whether resampling ``rate`` to ``target`` keeps the FFT's lengths 7-smooth."""
    return _smooth(rate // math.gcd(rate, target)) and _smooth(target // math.gcd(rate, target))


def _chunks(data: bytes) -> dict[bytes, tuple[int, int]]:
    """The RIFF chunks of ``data``: id -> (offset, declared size); the first of each id wins."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise _invalid("the audio is not a WAV file (no RIFF/WAVE header)")
    found: dict[bytes, tuple[int, int]] = {}
    position = 12
    while position + 8 <= len(data):
        chunk_id = data[position : position + 4]
        size = int.from_bytes(data[position + 4 : position + 8], "little")
        found.setdefault(chunk_id, (position + 8, size))
        if chunk_id == b"data":
            break  # the samples run to the end; what follows them does not matter
        position += 8 + size + (size & 1)  # chunks are padded to an even length
    return found


def _format(data: bytes, offset: int, size: int) -> tuple[int, int, int, int]:
    """(format tag, channels, sample rate, bits per sample) from a ``fmt `` chunk."""
    if size < 16 or offset + 16 > len(data):
        raise _invalid("the WAV header is truncated (short fmt chunk)")
    tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, offset)
    if tag == _EXTENSIBLE:
        if size < 40 or offset + 40 > len(data):
            raise _invalid("the WAV header is truncated (short extensible fmt chunk)")
        tag = int.from_bytes(data[offset + 24 : offset + 26], "little")  # the sub-format GUID
    return tag, channels, rate, bits


def read_wav(data: bytes, *, max_seconds: float) -> WavInfo:
    """Check ``data`` is a usable WAV recording and say what it holds.

    Raises:
        InvalidUpload: not a WAV, an unsupported encoding, a truncated header or data chunk,
            no samples, or longer than ``max_seconds``.
    """
    chunks = _chunks(data)
    if b"fmt " not in chunks:
        raise _invalid("the WAV header is truncated or has no fmt chunk")
    tag, channels, rate, bits = _format(data, *chunks[b"fmt "])
    if (tag, bits) not in _SUPPORTED:
        kind = "float" if tag == _FLOAT else "PCM" if tag == _PCM else f"format 0x{tag:04x}"
        raise _invalid(f"unsupported WAV encoding: {bits}-bit {kind}")
    if channels < 1 or not MIN_RATE <= rate <= MAX_RATE:
        raise _invalid(f"unusable WAV header: {channels} channel(s) at {rate} Hz")
    if not cheap_rate(rate):
        raise _invalid(
            f"unsupported sample rate {rate} Hz: record at a standard rate "
            "(8000, 11025, 16000, 22050, 32000, 44100, 48000, 96000 Hz, ...)"
        )
    if b"data" not in chunks:
        raise _invalid("the WAV file is truncated: it has no data chunk")
    offset, size = chunks[b"data"]
    available = len(data) - offset
    if size >= _PLACEHOLDER_SIZE:
        size = available  # a streamed recording: the samples run to the end of the upload
    if size > available:
        raise _invalid(f"the WAV data is truncated: {available} of {size} bytes present")
    frame_bytes = channels * bits // 8
    info = WavInfo(rate, channels, bits, tag == _FLOAT, size // frame_bytes, offset)
    if info.frames == 0:
        raise _invalid("the WAV file holds no audio samples")
    if info.frames * channels > MAX_SAMPLES:
        raise _invalid(
            f"the recording holds {info.frames * channels} samples; the limit is {MAX_SAMPLES}"
        )
    if info.duration_s > max_seconds:
        raise _invalid(
            f"the recording is {info.duration_s:.1f} s long; the limit is {max_seconds:g} s"
        )
    return info


def _samples(data: bytes, info: WavInfo) -> Samples:
    """The interleaved samples as float32 in [-1, 1]."""
    raw = np.frombuffer(data, np.uint8, info.frames * info.frame_bytes, info.data_offset)
    if info.float_samples:
        floats = raw.view("<f4" if info.bits == 32 else "<f8").astype(np.float32)
        return np.nan_to_num(floats, nan=0.0, posinf=1.0, neginf=-1.0)
    if info.bits == 8:  # 8-bit WAV is unsigned, centred on 128
        return (raw.astype(np.float32) - 128.0) / 128.0
    if info.bits == 24:  # little-endian triplets: place in the top of an int32, keep the sign
        triplets = raw.reshape(-1, 3).astype(np.int32)
        wide = (triplets[:, 0] << 8) | (triplets[:, 1] << 16) | (triplets[:, 2] << 24)
        return wide.astype(np.float32) / np.float32(2.0**31)
    scale = np.float32(2.0 ** (info.bits - 1))
    return raw.view(f"<i{info.bits // 8}").astype(np.float32) / scale


def resample(samples: Samples, rate: int, target: int) -> Samples:
    """Band-limited resampling through the spectrum (rfft, crop or zero-pad, irfft).

    Cropping the spectrum is an ideal low-pass, so 44.1/48 kHz audio folds no energy above
    8 kHz into the speech band; zero-padding it is ideal interpolation, so 8 kHz audio gains no
    mirror images above 4 kHz. Linear interpolation does neither. Whole-signal FFTs are fine
    here: recordings are short and already in memory. The signal is padded with about 0.1 s of
    silence, to a length that maps to a whole number of output samples, so the FFT's
    wrap-around does not join its end to its start and the rate ratio is exact; that number of
    steps is rounded up to a 7-smooth one, so both FFT lengths factor into small primes (with a
    rate ``cheap_rate`` accepts), which is what keeps the FFT fast.
    """
    if rate == target:
        return samples
    step = rate // math.gcd(rate, target)
    padded_length = _next_smooth(-(-(len(samples) + rate // 10) // step)) * step
    padded = np.zeros(padded_length, np.float32)
    padded[: len(samples)] = samples
    length = padded_length * target // rate
    out = np.fft.irfft(np.fft.rfft(padded), length) * np.float32(length / padded_length)
    return out[: round(len(samples) * target / rate)].astype(np.float32)


def to_whisper(data: bytes, *, max_seconds: float) -> tuple[Samples, WavInfo]:
    """The recording as float32 mono at 16 kHz, and its header; checks as ``read_wav`` does."""
    info = read_wav(data, max_seconds=max_seconds)
    mono = _samples(data, info).reshape(-1, info.channels).mean(axis=1, dtype=np.float32)
    mono = resample(mono, info.rate, WHISPER_RATE)
    return np.clip(mono, -1.0, 1.0), info
