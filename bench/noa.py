"""Switchboard's own time per glasses turn, and what hedging saves on a provider's slow tail.

Starts Switchboard under uvicorn with a catalog of local fake providers (tests/fake_upstream.py,
which answer in about a millisecond) and posts glasses turns to ``/noa`` the way the Frame app
does: the turns of our labelled glasses conversations (``data/glasses_turns.jsonl``) in
order, each with its history so far, a 720x720 JPEG when the turn has a photo, location and
time. Reports:

1. Own time per turn (``debug.timings.switchboard_ms``: the total minus transcription minus
   waiting on the provider; photo check, routing with the turn classifier, conversation memory,
   request building, accounting) p50/p99, and the client-side wall time minus provider time.
   Questions are sent as text so transcription is excluded, as the target asks; one spoken
   turn is timed on its own to show what local transcription adds.
2. Hedging: the vision provider answers in 50 ms but every 10th call takes 2.5 s. The same
   turns run against a Switchboard with hedging on and one with it off (``SWITCHBOARD_HEDGE``);
   total time p50/p90/p99 and mean, and the share of turns answered by the hedge.

    .venv/bin/python bench/noa.py [--turns 200]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.selection.turns import load_labelled_turns
from tests import fake_upstream
from tests.adapters.test_transcription import as_glasses_wav, spoken
from tests.processes import switchboard


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def photo() -> bytes:
    image = Image.new("RGB", (720, 720), (90, 140, 70))
    ImageDraw.Draw(image).ellipse((200, 260, 520, 560), fill=(200, 160, 60))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()


def catalog(fake: str, vision_path: str) -> dict[str, object]:
    def row(
        model_id: str, path: str, prior: float, caps: list[str], price: float
    ) -> dict[str, object]:
        return {"id": model_id, "adapter": "openai_compat", "base_url": f"{fake}{path}",
                "price": {"input_per_mtok": price, "output_per_mtok": price},
                "context_window": 8192, "capabilities": caps, "profile": {"prior_quality": prior}}  # fmt: skip

    return {
        "models": [
            row("text/fast", "/answer/text/v1", 0.6, [], 0.0),
            row("cloud/vision", vision_path, 0.8, ["vision"], 3.0),
            row("cloud/vision-b", "/answer/vision-b/v1", 0.75, ["vision"], 3.0),
            row("cloud/search", "/answer/search/v1", 0.55, ["web_search"], 1.0),
        ]
    }


def turn(
    client: httpx.Client, url: str, question: str, image: bytes | None, history: list[dict]
) -> dict:  # type: ignore[type-arg]
    started = time.perf_counter()
    reply = client.post(
        f"{url}/noa",
        files={"image": ("p.jpg", image, "image/jpeg")} if image else None,
        data={
            "prompt": question,
            "messages": json.dumps(history),
            "location": "Oslo, Norway",
            "time": "Tue 25 Nov 2026 10:15",
        },
    )
    reply.raise_for_status()
    body = reply.json()
    body["wall_ms"] = (time.perf_counter() - started) * 1000
    return body


def run_turns(url: str, turns: int, skip: int = 0) -> list[dict]:  # type: ignore[type-arg]
    """``turns`` turns of the labelled glasses conversations, each with its history so far."""
    image = photo()
    results = []
    labelled = load_labelled_turns()[skip : skip + turns]
    with httpx.Client(timeout=60) as client:
        history: list[dict[str, str]] = []
        for labelled_turn in labelled:
            if labelled_turn.index == 0:
                history = []
            body = turn(client, url, labelled_turn.text, image if labelled_turn.has_image else None,
                        history[-4:])  # fmt: skip
            results.append(body)
            history += [{"role": "user", "content": labelled_turn.text},
                        {"role": "assistant", "content": body["message"]}]  # fmt: skip
    return results


def spoken_turn(url: str) -> dict:  # type: ignore[type-arg]
    """One spoken turn as the glasses send it (espeak-ng, 8 kHz 8-bit), after a warm-up turn."""
    image = ("p.jpg", photo(), "image/jpeg")
    with httpx.Client(timeout=120) as client:
        # Not in the labelled conversations above, so the measured embedding is not cached.
        for question in (
            "what colour is the car in front of me",
            "which of these apples looks the ripest",
        ):
            files = {"audio": ("q.wav", as_glasses_wav(*spoken(question)), "audio/wav"),
                     "image": image}  # fmt: skip
            reply = client.post(f"{url}/noa", files=files)
        reply.raise_for_status()
        result: dict = reply.json()  # type: ignore[type-arg]
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name, fake_upstream.fake_upstream() as fake:
        tmp = Path(tmp_name)
        rows: list[tuple[str, str]] = []

        plain = tmp / "plain.yaml"
        plain.write_text(yaml.safe_dump(catalog(fake, "/answer/vision/v1")))
        with switchboard({"SWITCHBOARD_CATALOG": str(plain)}, tmp / "plain.log") as url:
            run_turns(url, 12, skip=1500)  # warm-up: ONNX session, connections (other turns)
            results = run_turns(url, args.turns)
            own = [r["debug"]["timings"]["switchboard_ms"] for r in results]
            wall = [r["wall_ms"] - r["debug"]["timings"]["model_ms"] for r in results]
            rows += [
                ("own time per turn, p50 (ms)", f"{statistics.median(own):.1f}"),
                ("own time per turn, p99 (ms)", f"{pct(own, 0.99):.1f}"),
                ("client wall minus provider time, p50 (ms)", f"{statistics.median(wall):.1f}"),
                ("client wall minus provider time, p99 (ms)", f"{pct(wall, 0.99):.1f}"),
            ]
            timings = spoken_turn(url)["debug"]["timings"]
            rows += [
                ("spoken turn: transcription (ms)", f"{timings['transcription_ms']:.0f}"),
                ("spoken turn: own time excl. transcription (ms)",
                 f"{timings['switchboard_ms']:.1f}"),
            ]  # fmt: skip

        tail = tmp / "tail.yaml"
        tail.write_text(yaml.safe_dump(catalog(fake, "/tail/10/vision/v1")))
        hedged: dict[str, list[dict]] = {}  # type: ignore[type-arg]
        for name, hedge in (("on", "true"), ("off", "false")):
            env = {"SWITCHBOARD_CATALOG": str(tail), "SWITCHBOARD_HEDGE": hedge}
            with switchboard(env, tmp / f"hedge-{name}.log") as url:
                run_turns(url, 12, skip=1500)
                hedged[name] = [r for r in run_turns(url, args.turns)
                                if r["debug"]["capabilities_used"] == ["vision"]]  # fmt: skip
        for name, results in hedged.items():
            total = [r["debug"]["timings"]["total_ms"] for r in results]
            by_b = sum(r["debug"]["model"] == "cloud/vision-b" for r in results) / len(results)
            rows += [
                (f"slow-tail vision turns, hedging {name}: n", str(len(results))),
                ("  total p50 / p90 / p99 (ms)",
                 f"{pct(total, 0.5):.0f} / {pct(total, 0.9):.0f} / {pct(total, 0.99):.0f}"),
                ("  mean (ms)", f"{statistics.mean(total):.0f}"),
                ("  answered by the hedge", f"{by_b:.0%}"),
            ]  # fmt: skip

    width = max(len(k) for k, _ in rows)
    print(f"{'measure':<{width}}  value")
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
