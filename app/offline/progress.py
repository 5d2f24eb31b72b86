"""Progress bars for the offline commands: tqdm's when the ``offline`` extra is installed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol, TypeVar

T = TypeVar("T")


class Progress(Protocol):
    def update(self, n: int = 1) -> object: ...


class _Silent:
    def update(self, n: int = 1) -> None:
        return None


@contextmanager
def progress(total: int, desc: str, unit: str) -> Iterator[Progress]:
    """A bar of ``total`` steps on stderr, or nothing when tqdm is not installed."""
    try:
        from tqdm import tqdm
    except ImportError:
        yield _Silent()
        return
    with tqdm(total=total, desc=desc, unit=unit) as bar:
        yield bar


def each(items: list[T], desc: str, unit: str) -> Iterator[T]:
    """``items`` one by one, with a bar when tqdm is installed."""
    with progress(len(items), desc, unit) as bar:
        for item in items:
            yield item
            bar.update(1)
