"""WAV uploads: every PCM layout becomes the same 16 kHz mono signal; bad files are refused."""

from __future__ import annotations

import io
import struct
import wave

import numpy as np
import pytest
from numpy.typing import NDArray

from app.errors import InvalidUpload, RequestError
from app.glasses.audio import WHISPER_RATE, read_wav, resample, to_whisper

Signal = NDArray[np.float64]


def wav_bytes(signal: Signal, rate: int, *, width: int = 2) -> bytes:
    """A plain PCM WAV written by the stdlib ``wave``; ``signal`` is (frames,) or (frames, ch)."""
    frames = signal.reshape(len(signal), -1)
    if width == 1:
        pcm = np.clip(np.round(frames * 128 + 128), 0, 255).astype(np.uint8)
    else:
        top = 2 ** (8 * width - 1)
        pcm = np.clip(np.round(frames * top), -top, top - 1).astype(f"<i{width}")
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(frames.shape[1])
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(pcm.tobytes())
    return out.getvalue()


def riff(fmt: bytes, data: bytes, *, data_size: int | None = None, extra: bytes = b"") -> bytes:
    """A WAV assembled by hand, for layouts ``wave`` cannot write."""
    size = len(data) if data_size is None else data_size
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra
    body += b"data" + struct.pack("<I", size) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def fmt_chunk(tag: int, channels: int, rate: int, bits: int, *, extensible: bool = False) -> bytes:
    block = channels * bits // 8
    head = (0xFFFE if extensible else tag, channels, rate, rate * block, block, bits)
    if not extensible:
        return struct.pack("<HHIIHH", *head)
    guid_tail = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    return struct.pack("<HHIIHHHHI", *head, 22, bits, 0) + struct.pack("<H", tag) + guid_tail


def tone(freq: float, rate: int, seconds: float, amplitude: float = 0.5) -> Signal:
    return amplitude * np.sin(2 * np.pi * freq * np.arange(round(rate * seconds)) / rate)


def peak(samples: NDArray[np.float32]) -> tuple[float, float]:
    """(frequency of the strongest component, its amplitude) of a 16 kHz signal."""
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples)))) / (len(samples) / 4)
    index = int(np.argmax(spectrum))
    return index * WHISPER_RATE / len(samples), float(spectrum[index])


def level_at(samples: NDArray[np.float32], freq: float) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples)))) / (len(samples) / 4)
    index = round(freq * len(samples) / WHISPER_RATE)
    return float(spectrum[index - 3 : index + 4].max())


def test_8_bit_unsigned_8_khz_mono_becomes_16_khz_float() -> None:
    data = wav_bytes(tone(440, 8000, 1.5), 8000, width=1)
    samples, info = to_whisper(data, max_seconds=120)
    assert (info.rate, info.channels, info.bits, info.frames) == (8000, 1, 8, 12_000)
    assert info.duration_s == pytest.approx(1.5)
    assert samples.dtype == np.float32 and len(samples) == 24_000
    freq, amplitude = peak(samples)
    assert freq == pytest.approx(440, abs=2)
    assert amplitude == pytest.approx(0.5, rel=0.03)  # centred on 128: no DC offset, no gain
    assert abs(float(samples.mean())) < 0.01


def test_16_bit_44_1_khz_stereo_is_mixed_down_without_aliasing() -> None:
    # Left holds speech-band 440 Hz and an inaudible-to-Whisper 12 kHz tone; right holds 1 kHz.
    # Naive decimation would fold 12 kHz onto 4 kHz (16 - 12); a band-limited resampler drops it.
    left = tone(440, 44_100, 2.0, 0.4) + tone(12_000, 44_100, 2.0, 0.4)
    right = tone(1000, 44_100, 2.0, 0.4)
    data = wav_bytes(np.stack([left, right], axis=1), 44_100)
    samples, info = to_whisper(data, max_seconds=120)
    assert (info.rate, info.channels, info.bits) == (44_100, 2, 16)
    assert len(samples) == 32_000
    assert level_at(samples, 440) == pytest.approx(0.2, rel=0.05)  # each channel at half
    assert level_at(samples, 1000) == pytest.approx(0.2, rel=0.05)
    assert level_at(samples, 4000) < 0.002


@pytest.mark.parametrize("bits", [8, 16, 24, 32])
@pytest.mark.parametrize("extensible", [False, True])
def test_every_pcm_width_decodes_to_the_same_signal(bits: int, extensible: bool) -> None:
    signal = tone(300, 16_000, 0.5, 0.7)
    top = 2 ** (bits - 1)
    if bits == 8:
        pcm = np.round(signal * 127 + 128).astype(np.uint8).tobytes()
    elif bits == 24:
        ints = np.round(signal * (top - 1)).astype("<i4").view(np.uint8).reshape(-1, 4)
        pcm = ints[:, :3].tobytes()
    else:
        pcm = np.round(signal * (top - 1)).astype(f"<i{bits // 8}").tobytes()
    data = riff(fmt_chunk(1, 1, 16_000, bits, extensible=extensible), pcm)
    samples, info = to_whisper(data, max_seconds=120)
    assert info.bits == bits and info.frames == len(signal)
    assert np.abs(samples - signal).max() < (0.01 if bits == 8 else 1e-4)


def test_float_wav_and_a_streamed_header_are_read() -> None:
    signal = tone(300, 16_000, 0.25).astype("<f4")
    streamed = riff(fmt_chunk(3, 1, 16_000, 32), signal.tobytes(), data_size=0xFFFFFFFF)
    samples, info = to_whisper(streamed, max_seconds=120)
    assert info.float_samples and info.frames == len(signal)
    assert np.abs(samples - signal).max() < 1e-6


def test_chunks_before_the_data_and_an_odd_tail_are_skipped() -> None:
    pcm = np.arange(100, dtype="<i2").tobytes() + b"\x01"  # half a frame at the end
    data = riff(fmt_chunk(1, 1, 8000, 16), pcm, extra=b"LIST\x03\x00\x00\x00abc\x00")
    info = read_wav(data, max_seconds=120)
    assert info.frames == 100


def _refusal(data: bytes, max_seconds: float = 120) -> InvalidUpload:
    with pytest.raises(InvalidUpload) as caught:
        to_whisper(data, max_seconds=max_seconds)
    error = caught.value
    assert isinstance(error, RequestError) and error.status_code == 400
    assert error.param == "audio" and error.code == "invalid_upload"
    assert error.envelope()["error"]["param"] == "audio"
    return error


GOOD = wav_bytes(tone(440, 8000, 1.0), 8000, width=1)


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "not a WAV"),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb" * 100, "not a WAV"),
        (b"just some text, not audio at all", "not a WAV"),
        (GOOD[:12], "no fmt chunk"),
        (GOOD[:30], "header is truncated"),
        (GOOD[:40], "no data chunk"),
        (GOOD[:1000], "data is truncated: 956 of 8000 bytes"),
        (riff(fmt_chunk(1, 1, 8000, 16), b""), "no audio samples"),
        (riff(fmt_chunk(1, 1, 8000, 16), b"\x01"), "no audio samples"),
        (
            riff(fmt_chunk(6, 1, 8000, 8), b"\x00" * 80),
            "unsupported WAV encoding: 8-bit format 0x0006",
        ),
        (riff(fmt_chunk(1, 1, 8000, 12), b"\x00" * 80), "unsupported WAV encoding: 12-bit PCM"),
        (riff(fmt_chunk(1, 1, 0, 16), b"\x00" * 80), "1 channel(s) at 0 Hz"),
        (riff(fmt_chunk(1, 0, 8000, 16), b"\x00" * 80), "0 channel(s) at 8000 Hz"),
    ],
)
def test_bad_uploads_are_refused_with_a_clear_message(data: bytes, says: str) -> None:
    assert says in _refusal(data).message


def test_recordings_past_the_limit_are_refused_before_decoding() -> None:
    long = wav_bytes(np.zeros(8000 * 121), 8000, width=1)
    assert "121.0 s long; the limit is 120 s" in _refusal(long).message
    assert "the limit is 5 s" in _refusal(wav_bytes(np.zeros(8000 * 6), 8000), 5).message
    assert read_wav(long, max_seconds=130).duration_s == pytest.approx(121)


@pytest.mark.parametrize(("rate", "target"), [(8000, 16_000), (44_100, 16_000), (22_050, 16_000)])
def test_resampling_keeps_length_and_level(rate: int, target: int) -> None:
    signal = tone(500, rate, 1.0).astype(np.float32)
    out = resample(signal, rate, target)
    assert len(out) == target and out.dtype == np.float32
    middle = out[target // 4 : 3 * target // 4]  # away from the edges
    expected = tone(500, target, 1.0)[target // 4 : 3 * target // 4]
    assert np.abs(middle - expected).max() < 0.01


STANDARD_RATES = [8000, 11_025, 12_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000, 88_200,
                  96_000, 176_400, 192_000, 352_800, 384_000]  # fmt: skip


@pytest.mark.parametrize("rate", STANDARD_RATES)
def test_every_standard_rate_is_accepted_and_resampled(rate: int) -> None:
    data = wav_bytes(tone(500, rate, 0.3), rate)
    samples, info = to_whisper(data, max_seconds=120)
    assert info.rate == rate and len(samples) == round(info.frames * 16_000 / rate)
    middle = samples[1000:3000]
    assert np.abs(middle - tone(500, 16_000, 0.3)[1000:3000]).max() < 0.01


@pytest.mark.parametrize("rate", [383_987, 22_222, 7_919])
def test_a_rate_that_cannot_be_resampled_cheaply_is_refused(rate: int) -> None:
    # 383987 Hz is prime: resampling 15 MB of it through the FFT took 1.7 s of CPU
    data = riff(fmt_chunk(1, 1, rate, 16), b"\x00" * 2 * rate)
    error = _refusal(data)
    assert f"{rate} Hz" in error.message and "44100" in error.message
    with pytest.raises(InvalidUpload):
        read_wav(data, max_seconds=120)  # refused the same way whichever transcriber runs


def test_a_recording_with_too_many_samples_is_refused_before_decoding() -> None:
    channels = 64  # 64 channels of 48 kHz for 6 s: 18 M samples from a 37 MB upload
    header = riff(fmt_chunk(1, channels, 48_000, 16), b"", data_size=0xFFFFFFFF)
    data = header + bytes(2 * channels * 48_000 * 6)
    assert "samples" in _refusal(data).message
