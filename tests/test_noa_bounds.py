"""Glasses uploads cost bounded work: oversized images are refused from their header alone.

A PNG of a single colour compresses 40 megapixels (160 MB decoded) into about 170 KB, well under
the upload limit; the pixel count is a setting (``SWITCHBOARD_NOA_MAX_IMAGE_PIXELS``) checked
before anything is decoded. Decoding happens on a small executor of its own, not on the thread
pool the embedding model uses.
"""

from __future__ import annotations

import io
import struct
import threading
import zlib
from collections.abc import AsyncIterator

import httpx
import pytest
from PIL import Image

from app.errors import InvalidUpload
from app.glasses.turn import check_image
from tests.inprocess import switchboard

MB = 1024 * 1024


def png_bomb(width: int, height: int, *, truncated: bool = False) -> bytes:
    """A valid RGBA PNG of ``width`` x ``height`` zero pixels, compressed row by row (the test
    never holds the decoded image); ``truncated`` keeps only its header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))
    if truncated:
        return b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", b"\x78\x9c")
    compressor, row, parts = zlib.compressobj(9), bytes(1 + 4 * width), []
    for _ in range(height):
        parts.append(compressor.compress(row))
    parts.append(compressor.flush())
    return b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")


def photo(size: int = 720) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), (120, 160, 200)).save(out, "JPEG")
    return out.getvalue()


def test_a_40_megapixel_png_is_refused_by_its_header() -> None:
    bomb = png_bomb(6400, 6250)
    assert len(bomb) < 200_000  # 170 KB that decodes to 160 MB
    with pytest.raises(InvalidUpload) as caught:
        check_image(bomb, 10 * MB, max_pixels=16_000_000)
    assert caught.value.param == "image"
    assert "SWITCHBOARD_NOA_MAX_IMAGE_PIXELS" in caught.value.message
    # only the header is read: the same header without pixel data is refused the same way
    with pytest.raises(InvalidUpload) as header_only:
        check_image(png_bomb(6400, 6250, truncated=True), 10 * MB, max_pixels=16_000_000)
    assert "6400x6250" in header_only.value.message


def test_images_within_the_pixel_limit_are_decoded_and_checked() -> None:
    assert check_image(photo(), 10 * MB, max_pixels=16_000_000).width == 720
    with pytest.raises(InvalidUpload, match="truncated or corrupt"):
        check_image(photo()[:2000], 10 * MB, max_pixels=16_000_000)
    with pytest.raises(InvalidUpload, match="1000x1000"):
        check_image(photo(1000), 10 * MB, max_pixels=999_999)


@pytest.fixture(scope="module")
async def client(
    fake: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    async with switchboard(fake, tmp_path_factory.mktemp("noa-bounds")) as c:
        yield c


async def test_the_glasses_endpoint_refuses_the_bomb_with_a_400(
    client: httpx.AsyncClient,
) -> None:
    files = {"image": ("photo.png", png_bomb(6400, 6250), "image/png")}
    response = await client.post("/noa", data={"prompt": "what is this?"}, files=files)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "image" and "SWITCHBOARD_NOA_MAX_IMAGE_PIXELS" in error["message"]


async def test_photos_are_checked_on_their_own_executor(client: httpx.AsyncClient) -> None:
    files = {"image": ("photo.jpg", photo(), "image/jpeg")}
    response = await client.post("/noa", data={"prompt": "what is this?"}, files=files)
    assert response.status_code == 200, response.text
    names = [t.name for t in threading.enumerate()]
    assert any(name.startswith("photo-check") for name in names), names
