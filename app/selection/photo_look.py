"""A cheap look at a turn's photo: is there anything to see (dark, covered, blank frame)?

Glasses send a camera frame with most turns, pointed wherever the wearer happens to face: into a
pocket, at the ceiling, at a wall, at night. Whether the frame shows anything is evidence for
the turn classifier (``app/turns.py``): an empty frame is more often an incidental one. It is
never a rule: a photo question with a black frame still needs ``vision`` (the model that looks
can say the lens is covered).

The look must come before any vision model and cost well under a millisecond, so it never
decodes the full photo: a JPEG is decoded at 1/8 scale by libjpeg itself (PIL ``draft``: only
the DC coefficients, 90x90 for a 720x720 frame), in greyscale. Other formats are looked at only
when they are already small (at most ``MAX_SMALL_PIXELS``); otherwise there is no evidence, as
for an image given by URL (Switchboard never fetches one).

What it measures. First the file's density, from its header alone: JPEG bits per pixel. A frame
with nothing in it compresses to almost nothing (a black or blank 720x720 frame is a few KB, a
scene 50-150 KB), so a dense file has detail and is not decoded at all. Only a sparse one is
decoded to its thumbnail (cheap, because it is small), for brightness, contrast (standard
deviation) and detail (mean absolute difference between neighbouring pixels). A frame is *empty*
when it has almost no contrast and no detail (a covered lens, a blank wall, darkness); *dark*
when nearly every pixel is near black. A night street with lights in it is dark on average but
not empty: its lights give it contrast and bits.
"""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image, UnidentifiedImageError

DENSE_BPP = 0.75  # JPEG bits per pixel above which a frame has detail (not decoded)
MAX_SMALL_PIXELS = 160 * 160  # non-JPEG images are decoded only up to this size
MAX_DATA_URL_CHARS = 2_000_000  # a sparse image behind a longer data URL is not decoded
HEADER_CHARS = 88_000  # base64 read for the image's size (JPEG headers sit after EXIF, < 64 KB)
EMPTY_CONTRAST = 24.0  # grey-level std below which a frame has no contrast
EMPTY_DETAIL = 1.0  # mean neighbour difference (1/8 scale) below which it has no detail
DARK_P95 = 40.0  # 95th-percentile grey level below which a frame is dark

FEATURES = ("looked", "empty", "dark")
"""The evidence vector's entries (:meth:`FrameLook.vector`), each 0 or 1. The file's density is
not one of them: it only decides whether to decode. How densely a camera encodes says nothing
about what the wearer asks, and a classifier fitted on one camera's density (our placeholder
photos are about 1 bit per pixel; a phone photo is 2 or more, a low-quality glasses frame 0.3)
would shift its decisions on another's."""


@dataclass(frozen=True)
class FrameLook:
    """What the thumbnail showed; the grey-level statistics only for a decoded (sparse) frame."""

    bits_per_pixel: float
    brightness: float | None = None  # mean grey level, 0-255
    contrast: float | None = None  # grey-level standard deviation
    detail: float | None = None  # mean absolute difference of neighbouring pixels
    p95: float | None = None  # 95th-percentile grey level

    @property
    def empty(self) -> bool:
        """Nothing to see: a covered lens, a blank surface, darkness."""
        if self.contrast is None or self.detail is None:
            return False
        return self.contrast < EMPTY_CONTRAST and self.detail < EMPTY_DETAIL

    @property
    def dark(self) -> bool:
        return self.p95 is not None and self.p95 < DARK_P95

    def vector(self) -> NDArray[np.float32]:
        return np.array([1.0, float(self.empty), float(self.dark)], dtype=np.float32)


NO_LOOK = np.zeros(len(FEATURES), dtype=np.float32)
"""The evidence vector when there is no photo, or it could not be looked at."""


def frame_vector(look: FrameLook | None) -> NDArray[np.float32]:
    return look.vector() if look is not None else NO_LOOK


def _header(data: bytes) -> tuple[str, int, int] | None:
    """Format, width and height from the start of an image file (no pixels decoded)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.format or "", image.width, image.height
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def _dense(fmt: str, width: int, height: int, size: int) -> FrameLook | None:
    """A JPEG with more than ``DENSE_BPP`` bits per pixel has detail: no need to decode it."""
    bpp = 8.0 * size / max(1, width * height)
    return FrameLook(bpp) if fmt == "JPEG" and bpp > DENSE_BPP else None


def look_at(data: bytes) -> FrameLook | None:
    """What a photo shows at a glance (see the module docstring); ``None`` if it is unreadable."""
    header = _header(data)
    if header is None:
        return None
    fmt, width, height = header
    dense = _dense(fmt, width, height, len(data))
    if dense is not None:
        return dense
    if fmt != "JPEG" and width * height > MAX_SMALL_PIXELS:
        return None  # PNG/WebP sizes say little and a full decode costs milliseconds
    try:
        with Image.open(io.BytesIO(data)) as image:
            if fmt == "JPEG":
                image.draft("L", (max(1, width // 8), max(1, height // 8)))
            pixels = np.asarray(image.convert("L"), dtype=np.float32)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    if pixels.size == 0:
        return None
    across = float(np.abs(np.diff(pixels, axis=1)).mean()) if pixels.shape[1] > 1 else 0.0
    down = float(np.abs(np.diff(pixels, axis=0)).mean()) if pixels.shape[0] > 1 else 0.0
    flat = pixels.ravel()
    k = int(0.95 * (flat.size - 1))
    return FrameLook(
        bits_per_pixel=8.0 * len(data) / max(1, width * height),
        brightness=float(flat.mean()),
        contrast=float(flat.std()),
        detail=(across + down) / 2,
        p95=float(np.partition(flat, k)[k]),
    )


def look_at_data_url(url: str) -> FrameLook | None:
    """:func:`look_at` for an OpenAI ``image_url`` value; ``None`` unless it is a base64 data URL.

    Only the first ``HEADER_CHARS`` of the base64 are decoded to read the image's size: a dense
    JPEG (any real scene) is judged from that and the payload's length, whatever its size.
    """
    comma = url.find(",", 0, 100)  # no copy of the payload unless it is decoded
    if not url.startswith("data:image/") or comma < 0 or not url[:comma].endswith(";base64"):
        return None
    try:
        header = None
        for chars in (8_000, HEADER_CHARS):  # most headers fit in the first 6 KB
            header = header or _header(base64.b64decode(url[comma + 1 : comma + 1 + chars]))
        size = (len(url) - comma - 1) * 3 // 4 - url[-2:].count("=")
        if header is not None and (dense := _dense(*header, size)) is not None:
            return dense
        if len(url) - comma - 1 > MAX_DATA_URL_CHARS:
            return None
        return look_at(base64.b64decode(url[comma + 1 :]))
    except (binascii.Error, ValueError):
        return None
