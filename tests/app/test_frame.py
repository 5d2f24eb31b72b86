"""The cheap look at a turn's photo, and the bounded n-gram features of its words."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image, ImageDraw

from app.selection.photo_look import FEATURES, NO_LOOK, look_at, look_at_data_url
from app.selection.turn_text import MAX_TEXT_CHARS, text_features, word_features


def _jpeg(image: Image.Image, quality: int = 85) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue()


def _scene() -> Image.Image:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(90, 90, 3), dtype=np.uint8)
    image = Image.fromarray(pixels).resize((720, 720), Image.Resampling.BICUBIC)
    ImageDraw.Draw(image).ellipse((200, 260, 520, 560), fill=(200, 160, 60))
    return image


def _noisy(colour: tuple[int, int, int], sigma: float) -> Image.Image:
    rng = np.random.default_rng(1)
    base = np.full((720, 720, 3), colour, dtype=np.float32) + rng.normal(0, sigma, (720, 720, 3))
    return Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))


def _data_url(data: bytes, media: str = "image/jpeg") -> str:
    return f"data:{media};base64," + base64.b64encode(data).decode()


def test_a_covered_or_dark_or_blank_frame_is_empty_and_a_scene_is_not() -> None:
    black = look_at(_jpeg(_noisy((5, 5, 5), 1.5)))
    wall = look_at(_jpeg(_noisy((205, 200, 190), 1.0)))
    scene = look_at(_jpeg(_scene()))
    assert black is not None and black.empty and black.dark
    assert wall is not None and wall.empty and not wall.dark
    assert scene is not None and not scene.empty and not scene.dark


def test_a_night_street_with_lights_is_dark_but_not_empty() -> None:
    night = Image.new("RGB", (720, 720), (8, 8, 16))
    pen = ImageDraw.Draw(night)
    for k in range(12):
        x, y = 40 + 55 * k, 100 + 37 * (k % 5)
        pen.ellipse((x, y, x + 18, y + 18), fill=(255, 225, 160))
    look = look_at(_jpeg(night))
    assert look is not None and look.dark and not look.empty


def test_data_urls_are_looked_at_and_anything_else_gives_no_evidence() -> None:
    black = _jpeg(Image.new("RGB", (720, 720), (3, 3, 3)))
    look = look_at_data_url(_data_url(black))
    assert look is not None and look.empty
    assert look.vector().tolist() == [1.0, 1.0, 1.0]
    assert look_at_data_url("https://example.com/photo.jpg") is None  # never fetched
    assert look_at_data_url("data:image/jpeg;base64,not base64 at all!!") is None
    assert look_at_data_url("data:image/jpeg,rawbytes") is None
    assert look_at(b"not an image") is None
    assert NO_LOOK.tolist() == [0.0] * len(FEATURES)


def test_a_dense_jpeg_is_judged_from_its_header_alone() -> None:
    truncated = _jpeg(_scene())
    url = _data_url(truncated)
    look = look_at_data_url(url[: len(url) // 2] + "A" * (len(url) - len(url) // 2))
    assert look is not None and look.brightness is None and not look.empty  # never decoded


def test_a_scene_is_the_same_evidence_from_any_camera_quality() -> None:
    """A phone's dense JPEG and a glasses camera's sparse one of the same scene say the same."""
    fine, coarse = _jpeg(_scene(), quality=95), _jpeg(_scene(), quality=10)
    looks = [look_at(fine), look_at(coarse)]
    assert looks[0] is not None and looks[1] is not None
    assert looks[0].bits_per_pixel > 3 * looks[1].bits_per_pixel
    assert looks[0].vector().tolist() == looks[1].vector().tolist() == [1.0, 0.0, 0.0]


def test_a_large_png_is_not_decoded() -> None:
    out = io.BytesIO()
    Image.new("RGB", (720, 720), (0, 0, 0)).save(out, format="PNG")
    assert look_at(out.getvalue()) is None
    small = io.BytesIO()
    Image.new("RGB", (64, 64), (0, 0, 0)).save(small, format="PNG")
    tiny = look_at(small.getvalue())
    assert tiny is not None and tiny.empty


def test_only_the_first_characters_of_a_turn_are_read() -> None:
    head = "what breed is that dog " * 200
    assert len(head) > MAX_TEXT_CHARS
    long = head + "and the weather tomorrow " * 40_000  # about a megabyte
    assert np.array_equal(text_features(long, 4096), text_features(head[:MAX_TEXT_CHARS], 4096))
    assert np.array_equal(word_features(long, 4096), word_features(head[:MAX_TEXT_CHARS], 4096))


def test_n_gram_features_are_normalised_and_tell_words_apart() -> None:
    a, b = text_features("what breed is that dog", 4096), text_features("will it rain", 4096)
    assert abs(float(np.linalg.norm(a)) - 1.0) < 1e-6
    assert float(a @ b) < 0.2
    assert float(a @ text_features("What breed is THAT dog?", 4096)) > 0.999
    assert not text_features("", 4096).any()
