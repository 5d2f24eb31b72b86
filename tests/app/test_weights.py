"""Weights from packages: found without importing, checked against pinned SHA-256, once."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.catalog import Launch
from app.embedding.encoder import DEFAULT_MODEL_SHA256, default_model_path, verify_model_files
from app.errors import ConfigError
from app.gateway.local_servers import resolve_gguf
from app.weights import VERIFIED, join_pieces, package_file, sha256_of, verify_sha256


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture()
def weights_package(tmp_path: Path) -> Iterator[str]:
    """An installed package that ships two weight pieces and whose import would fail."""
    root = tmp_path / "site"
    package = root / "sb_test_weights"
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("raise RuntimeError('importing a weights package')\n")
    (package / "data" / "part1.bin").write_bytes(b"GGUF" + b"a" * 1000)
    (package / "data" / "part2.bin").write_bytes(b"b" * 500)
    sys.path.insert(0, str(root))
    try:
        yield "sb_test_weights"
    finally:
        sys.path.remove(str(root))
        sys.modules.pop("sb_test_weights", None)


def test_package_file_is_found_without_importing_the_package(weights_package: str) -> None:
    path = package_file(f"package:{weights_package}/data/part1.bin")
    assert path.read_bytes().startswith(b"GGUF")
    assert weights_package not in sys.modules


def test_missing_package_or_file_is_a_clear_config_error(weights_package: str) -> None:
    with pytest.raises(ConfigError, match="'sb_no_such_package' is not installed"):
        package_file("package:sb_no_such_package/model.gguf")
    with pytest.raises(ConfigError, match=r"has no file .data/part9\.bin."):
        package_file(f"package:{weights_package}/data/part9.bin")


def test_matching_file_passes_and_the_check_is_remembered(tmp_path: Path) -> None:
    weights = tmp_path / "model.gguf"
    weights.write_bytes(b"the pinned weights")
    cache = tmp_path / "cache"
    verify_sha256(weights, sha(b"the pinned weights"), cache)
    assert str(weights.resolve()) in (cache / VERIFIED).read_text()

    # Same size and mtime: taken as verified without reading the file again...
    stat = weights.stat()
    weights.write_bytes(b"THE PINNED WEIGHTS")
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    verify_sha256(weights, sha(b"the pinned weights"), cache)
    # ...but any change of mtime means the file is hashed again, and found out.
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    with pytest.raises(ConfigError):
        verify_sha256(weights, sha(b"the pinned weights"), cache)


def test_mismatch_names_the_file_and_both_hashes(tmp_path: Path) -> None:
    weights = tmp_path / "model.gguf"
    weights.write_bytes(b"tampered weights")
    expected = sha(b"the pinned weights")
    with pytest.raises(ConfigError) as error:
        verify_sha256(weights, expected, tmp_path / "cache")
    assert str(weights) in error.value.message
    assert expected in error.value.message
    assert sha(b"tampered weights") in error.value.message
    assert not (tmp_path / "cache" / VERIFIED).exists()  # a mismatch is never remembered


def test_pieces_are_joined_once_and_checked(weights_package: str, tmp_path: Path) -> None:
    pieces = [
        f"package:{weights_package}/data/part1.bin",
        f"package:{weights_package}/data/part2.bin",
    ]
    whole = b"GGUF" + b"a" * 1000 + b"b" * 500
    target = tmp_path / "cache" / "gguf" / "joined.gguf"
    assert join_pieces(pieces, target, sha(whole), tmp_path / "cache").read_bytes() == whole
    assert list(target.parent.iterdir()) == [target]  # no temporary file left behind

    with pytest.raises(ConfigError, match="does not match its pinned hash"):
        join_pieces(pieces[:1], tmp_path / "other.gguf", sha(whole), tmp_path / "cache")
    assert not (tmp_path / "other.gguf").exists()


def test_a_damaged_joined_copy_is_joined_again(weights_package: str, tmp_path: Path) -> None:
    pieces = [
        f"package:{weights_package}/data/part1.bin",
        f"package:{weights_package}/data/part2.bin",
    ]
    whole = b"GGUF" + b"a" * 1000 + b"b" * 500
    cache = tmp_path / "cache"
    launch = Launch(gguf=pieces, sha256=sha(whole))
    path = resolve_gguf(launch, cache)
    path.write_bytes(b"GGUF" + b"x" * 1500)  # a disk error, or a hand edit
    assert resolve_gguf(launch, cache).read_bytes() == whole


def test_resolve_gguf_refuses_a_file_that_is_not_the_pinned_one(
    weights_package: str, tmp_path: Path
) -> None:
    spec = f"package:{weights_package}/data/part1.bin"
    good = Launch(gguf=spec, sha256=sha(b"GGUF" + b"a" * 1000))
    assert resolve_gguf(good, tmp_path).name == "part1.bin"
    bad = Launch(gguf=spec, sha256="0" * 64)
    with pytest.raises(ConfigError, match=r"part1\.bin does not match its pinned hash"):
        resolve_gguf(bad, tmp_path)


def test_pieces_without_a_pinned_hash_are_refused_by_the_catalog() -> None:
    with pytest.raises(ValueError, match="needs at least one piece and its sha256"):
        Launch(gguf=["package:a/b.bin", "package:a/c.bin"])


def test_bundled_gguf_and_embedding_model_match_their_pins(tmp_path: Path) -> None:
    """The installed weights are the pinned ones (what every start-up checks)."""
    from app.catalog import load_catalog

    for entry in load_catalog().models:
        if entry.launch is not None:
            assert entry.launch.sha256 is not None, entry.id
            resolved = resolve_gguf(entry.launch, Path.home() / ".cache" / "switchboard")
            assert sha256_of(resolved) == entry.launch.sha256
    verify_model_files(default_model_path(), DEFAULT_MODEL_SHA256, tmp_path)


def test_a_tampered_embedding_model_is_refused(tmp_path: Path) -> None:
    source = default_model_path()
    copy = tmp_path / "model"
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("model.safetensors"))
    (copy / "model.safetensors").symlink_to(source / "model.safetensors")
    config = copy / "config.json"
    config.write_text(config.read_text().replace('"hidden_size": 384', '"hidden_size": 385'))
    with pytest.raises(ConfigError, match=r"config\.json does not match its pinned hash"):
        verify_model_files(copy, DEFAULT_MODEL_SHA256, tmp_path / "cache")
