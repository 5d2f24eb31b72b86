"""Run Switchboard in this process under an address-space limit and send it hostile requests.

``python -m tests.bounded_app <tmpdir> <headroom MB>`` starts the real app (lifespan, embedding
model, transcription configured), then caps this process's address space (``RLIMIT_AS``) at
what it uses plus the headroom, sends each request of ``REQUESTS`` through httpx's ASGI
transport, and prints one JSON line per request (name, status, error param) and a final line
with the peak resident memory. An allocation past the cap fails (``MemoryError``, or the
process dies); ``tests/test_resource_bounds.py`` reads the lines.
"""

from __future__ import annotations

import asyncio
import io
import json
import resource
import struct
import sys
from pathlib import Path

import httpx
import yaml

from app.main import create_app
from app.settings import Settings
from tests.processes import CACHE
from tests.test_noa_bounds import png_bomb

MB = 1024 * 1024


def _vm_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


def _prime_rate_wav(rate: int = 383_987, size: int = 15_000_000) -> bytes:
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    samples = bytes(size)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
    body += b"data" + struct.pack("<I", len(samples)) + samples
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _chat(messages: list[dict[str, str]]) -> bytes:
    return json.dumps({"model": "auto", "messages": messages}, separators=(",", ":")).encode()


def requests() -> list[tuple[str, str, dict[str, object]]]:
    """(name, path, httpx keyword arguments) of each hostile request."""
    huge = _chat([{"role": "user", "content": "word " * 4_000_000}])  # one 20 MB message
    many = _chat([{"role": "user", "content": "hi"}] * 600_000)  # 600k messages, 19 MB
    json_body = {"headers": {"content-type": "application/json"}}
    return [
        ("20 MB message, /v1/route", "/v1/route", {"content": huge, **json_body}),
        ("20 MB message, chat", "/v1/chat/completions", {"content": huge, **json_body}),
        ("600k messages, /v1/route", "/v1/route", {"content": many, **json_body}),
        ("600k messages, chat", "/v1/chat/completions", {"content": many, **json_body}),
        ("prime-rate WAV, /noa", "/noa",
         {"files": {"audio": ("q.wav", _prime_rate_wav(), "audio/wav")}}),
        ("40-megapixel PNG, /noa", "/noa",
         {"data": {"prompt": "what is this?"},
          "files": {"image": ("p.png", png_bomb(6400, 6250), "image/png")}}),
    ]  # fmt: skip


async def main(tmp: Path, headroom_mb: int) -> None:
    catalog = {"models": [{
        "id": "fake/text", "adapter": "openai_compat", "base_url": "http://127.0.0.1:9/v1",
        "price": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}, "context_window": 128000,
        "capabilities": ["vision"], "profile": {"prior_quality": 0.6}}]}  # fmt: skip
    (tmp / "catalog.yaml").write_text(yaml.safe_dump(catalog))
    settings = Settings(
        catalog=tmp / "catalog.yaml",
        cache_dir=CACHE,
        manage_local=False,
        transcription="openai",  # recordings are checked here before anything is sent
        transcription_base_url="http://127.0.0.1:9/v1",
    )
    app = create_app(settings)
    hostile = requests()
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    client = httpx.AsyncClient(transport=transport, base_url="http://sb", timeout=600)
    async with app.router.lifespan_context(app), client as c:
        assert (await c.get("/healthz")).status_code == 200
        limit = _vm_bytes() + headroom_mb * MB
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        for name, path, kwargs in hostile:
            try:
                response = await c.post(path, **kwargs)  # type: ignore[arg-type]
                status, body = response.status_code, response.json()
            except MemoryError:
                status, body = -1, {}
            param = (body.get("error") or {}).get("param")
            print(json.dumps({"name": name, "status": status, "param": param}), flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"peak_rss_mb": round(peak / MB), "limit_mb": round(limit / MB)}))


if __name__ == "__main__":
    out = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", line_buffering=True)
    sys.stdout = out
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
