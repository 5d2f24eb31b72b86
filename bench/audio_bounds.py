"""CPU time of turning a large WAV upload into Whisper's input, per declared sample rate.

A 15 MB 16-bit mono recording at each rate goes through ``app.glasses.audio.to_whisper`` (the local
transcriber's first step). Rates the FFT resampler cannot handle cheaply (a prime such as
383987 Hz) are refused before decoding; standard rates are resampled with 7-smooth FFT lengths.
CPU-seconds are this process's own (figures on a shared machine are upper bounds).

    .venv/bin/python bench/audio_bounds.py
"""

from __future__ import annotations

import struct
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.errors import InvalidUpload
from app.glasses.audio import to_whisper

RATES = [383_987, 384_000, 352_800, 192_000, 96_000, 48_000, 22_050, 8_000]


def wav(rate: int, size: int, seconds: float) -> bytes:
    frames = min(size // 2, int(rate * seconds))
    samples = (np.random.default_rng(0).standard_normal(frames) * 3000).astype("<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
    body += b"data" + struct.pack("<I", len(samples)) + samples
    return b"RIFF" + struct.pack("<I", len(body)) + body


def main() -> None:
    print(f"{'rate Hz':>8} {'upload MB':>10} {'seconds':>8} {'result':>14} {'CPU s':>6}")
    for rate in RATES:
        data = wav(rate, 15_000_000, 119.0)
        seconds = (len(data) - 44) / 2 / rate
        started = time.process_time()
        try:
            to_whisper(data, max_seconds=120)
            result = "resampled"
        except InvalidUpload:
            result = "refused (400)"
        cpu = time.process_time() - started
        print(f"{rate:>8} {len(data) / 1e6:>10.1f} {seconds:>8.1f} {result:>14} {cpu:>6.2f}")


if __name__ == "__main__":
    main()
