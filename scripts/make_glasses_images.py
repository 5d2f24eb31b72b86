"""Placeholder photos for the labelled glasses turns, generated on demand (never in git).

Frame glasses send a 720x720 JPEG with most queries, pointed wherever the wearer faces. Each
turn of ``data/glasses_turns.jsonl`` with ``has_image`` gets one, drawn with PIL:

- ``photo``: its conversation's scene as a few shapes and a caption; one in six is drawn at
  night (dark colours with a few lights), so brightness alone does not say "empty".
- ``dark``: a nearly black frame with sensor noise (a pocket, a dark room).
- ``covered``: a finger over the lens: a smooth reddish-brown glow.
- ``blank``: a featureless surface filling the view (a wall, a ceiling), with a faint gradient.

Which turns get an empty frame is in the data (``frame``): an assumption, since we have no real
glasses frames, that incidental photos are empty more often (15% of turns not needing
``vision``) than photos the user is asking about (4%). The turn classifier reads only the cheap
look of ``app.selection.photo_look``; the drawings only need to be valid JPEGs of the right kind.

    .venv/bin/python scripts/make_glasses_images.py [--dir ~/.cache/switchboard/glasses_images]
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.selection.turns import LabelledTurn, load_labelled_turns

SIZE = 720
VERSION = 2  # bump when the drawings change: the cache directory is per version
DEFAULT_DIR = Path.home() / ".cache" / "switchboard" / f"glasses_images-v{VERSION}"


def _noisy(base: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0.0, sigma, base.shape)
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def _empty_frame(kind: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    if kind == "dark":
        level = rng.uniform(2, 14)
        base = np.repeat((level + 4 * x)[..., None], 3, axis=2)
        return _noisy(base, rng.uniform(0.8, 2.0), seed)
    if kind == "covered":
        glow = 1.0 - np.hypot(x - rng.uniform(0.3, 0.7), y - rng.uniform(0.3, 0.7))
        tint = np.array([rng.uniform(90, 160), rng.uniform(35, 70), rng.uniform(25, 50)])
        return _noisy(glow[..., None] * tint, 1.0, seed)
    colour = rng.uniform(120, 235, size=3)  # blank: a wall or ceiling
    base = colour * (0.9 + 0.1 * y)[..., None]
    return _noisy(base, rng.uniform(0.5, 1.5), seed)


def draw(scene: str, seed: int, path: Path, frame: str = "photo") -> None:
    """A 720x720 JPEG of kind ``frame`` (see the module docstring)."""
    from PIL import Image, ImageDraw, ImageFont

    if frame != "photo":
        Image.fromarray(_empty_frame(frame, seed)).save(path, "JPEG", quality=80)
        return
    night = seed % 6 == 0

    def colour(k: int) -> tuple[int, int, int]:
        h = zlib.crc32(f"{seed}:{k}".encode())
        rgb = (h & 0xFF, (h >> 8) & 0xFF, (h >> 16) & 0xFF)
        return tuple(c // 6 for c in rgb) if night else rgb  # type: ignore[return-value]

    image = Image.new("RGB", (SIZE, SIZE), colour(0))
    pen = ImageDraw.Draw(image)
    for k in range(1, 5):
        h = zlib.crc32(f"{seed}:shape:{k}".encode())
        x, y, r = h % 560 + 80, (h >> 10) % 400 + 80, (h >> 20) % 120 + 40
        box = (x - r, y - r, x + r, y + r)
        (pen.ellipse if k % 2 else pen.rectangle)(box, fill=colour(k))
    if night:
        for k in range(8):
            h = zlib.crc32(f"{seed}:light:{k}".encode())
            x, y = h % 680 + 20, (h >> 12) % 520 + 20
            pen.ellipse((x, y, x + 14, y + 14), fill=(255, 230, 170))
    font = ImageFont.load_default(size=32)
    caption = "\n".join(textwrap.wrap(scene, 36))
    pen.rectangle((0, 560, SIZE, SIZE), fill=(20, 20, 20))
    pen.multiline_text((24, 580), caption, fill=(120, 120, 120) if night else (240, 240, 240),
                       font=font)  # fmt: skip
    texture = _noisy(np.asarray(image, dtype=np.float32), 3.0 if night else 7.0, seed)
    Image.fromarray(texture).save(path, "JPEG", quality=80)  # real scenes have texture


def ensure_images(turns: list[LabelledTurn], directory: Path | None = None) -> list[Path | None]:
    """The photo of each turn (``None`` without one), drawing those not yet in ``directory``."""
    directory = directory or DEFAULT_DIR
    directory.mkdir(parents=True, exist_ok=True)
    paths: list[Path | None] = []
    for turn in turns:
        if turn.image_name is None:
            paths.append(None)
            continue
        path = directory / f"{turn.frame}-{turn.image_name}"
        if not path.exists():
            tmp = path.with_suffix(f".{os.getpid()}.tmp")  # processes drawing at once never clash
            seed = zlib.crc32(turn.conversation.encode()) + turn.index
            draw(turn.scene, seed, tmp, turn.frame)
            tmp.replace(path)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    args = parser.parse_args()
    paths = ensure_images(load_labelled_turns(), args.dir)
    print(f"{sum(p is not None for p in paths)} photos in {args.dir}")


if __name__ == "__main__":
    main()
