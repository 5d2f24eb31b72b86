"""Placeholder photos for the labelled glasses turns, generated on demand (never in git).

Frame glasses send a 720x720 JPEG with most queries. Each turn of
``app/data/glasses_turns.jsonl`` with ``has_image`` gets one, drawn with PIL from its
conversation's scene (a few shapes and the scene as a caption), so the data set exercises the
real request shape: a photo attached to turns that are mostly not about it. The turn
classifier never reads the pixels (its decision comes before any vision model), so the
drawings only need to exist and be valid JPEGs.

    .venv/bin/python scripts/make_glasses_images.py [--dir ~/.cache/switchboard/glasses_images]
"""

from __future__ import annotations

import argparse
import sys
import textwrap
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.selection.turns import LabelledTurn, load_labelled_turns

SIZE = 720
DEFAULT_DIR = Path.home() / ".cache" / "switchboard" / "glasses_images"


def draw(scene: str, seed: int, path: Path) -> None:
    """A 720x720 JPEG: a coloured background, a few shapes, and ``scene`` as a caption."""
    from PIL import Image, ImageDraw, ImageFont

    def colour(k: int) -> tuple[int, int, int]:
        h = zlib.crc32(f"{seed}:{k}".encode())
        return (h & 0xFF, (h >> 8) & 0xFF, (h >> 16) & 0xFF)

    image = Image.new("RGB", (SIZE, SIZE), colour(0))
    pen = ImageDraw.Draw(image)
    for k in range(1, 5):
        h = zlib.crc32(f"{seed}:shape:{k}".encode())
        x, y, r = h % 560 + 80, (h >> 10) % 400 + 80, (h >> 20) % 120 + 40
        box = (x - r, y - r, x + r, y + r)
        (pen.ellipse if k % 2 else pen.rectangle)(box, fill=colour(k))
    font = ImageFont.load_default(size=32)
    caption = "\n".join(textwrap.wrap(scene, 36))
    pen.rectangle((0, 560, SIZE, SIZE), fill=(20, 20, 20))
    pen.multiline_text((24, 580), caption, fill=(240, 240, 240), font=font)
    image.save(path, "JPEG", quality=80)


def ensure_images(turns: list[LabelledTurn], directory: Path | None = None) -> list[Path | None]:
    """The photo of each turn (``None`` without one), drawing those not yet in ``directory``."""
    directory = directory or DEFAULT_DIR
    directory.mkdir(parents=True, exist_ok=True)
    paths: list[Path | None] = []
    for turn in turns:
        if turn.image_name is None:
            paths.append(None)
            continue
        path = directory / turn.image_name
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            draw(turn.scene, zlib.crc32(turn.conversation.encode()) + turn.index, tmp)
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
