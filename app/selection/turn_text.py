"""The words of a turn as hashed n-gram features, with bounded work.

Mean-pooled sentence embeddings are dominated by the topic and blur the small words that decide
a capability ("this", "that one", "right now"); hashed word 1-2-grams and character 3-5-grams give
them back, and the character grams absorb transcription spelling ("whats", "tonite", "the
whether"). Every gram sets one of ``dim`` buckets; the vector is L2-normalised.

The work is bounded whatever the caller sends: only the first ``MAX_TEXT_CHARS`` characters are
read (an API prompt can be a pasted book; the embedding reads even less, 128 word pieces, about
600 characters; no labelled turn is longer than 750 characters, and no glasses turn than 251,
so the bound never changes what the classifier was fitted on),
words are hashed once each with CRC-32, and the character grams of all three lengths are hashed
at once with numpy (a polynomial hash over a sliding window of the UTF-8 bytes, then a
multiplicative mix), so the longest prompt costs about a quarter of a millisecond and no Python
object per gram.
"""

from __future__ import annotations

import string
import zlib

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

MAX_TEXT_CHARS = 1000
CHAR_GRAMS = (3, 4, 5)
SHAPE = ("words", "one or two words", "five words or fewer", "question mark")
"""The shape of the words (:func:`shape_features`): a bare "breed?" or "translate" with a photo
is a different request from the same word inside a sentence."""

_PUNCTUATION = str.maketrans({c: " " for c in string.punctuation + "“”‘’¿¡…" if c not in "'’"})
_APOSTROPHES = str.maketrans("", "", "'’")
_U64 = np.uint64
_MIX = _U64(0x9E3779B97F4A7C15)  # Fibonacci hashing: spreads nearby hashes over the buckets
_BASE = _U64(0x100000001B3)
_START, _END = _U64(0x5BD1E995), _U64(0x1B873593)
_SALT_BIGRAM, _SALT_CHAR = _U64(0x27D4EB2F165667C5), _U64(0x165667B19E3779F9)


def words_of(text: str) -> list[str]:
    """Lower-case words of the first ``MAX_TEXT_CHARS`` characters, punctuation removed."""
    clipped = text[:MAX_TEXT_CHARS].lower()
    return clipped.translate(_APOSTROPHES).translate(_PUNCTUATION).split()


def _mix(hashes: NDArray[np.uint64]) -> NDArray[np.uint64]:
    mixed = hashes * _MIX
    return mixed ^ (mixed >> _U64(29))


def _char_gram_hashes(padded: bytes) -> list[NDArray[np.uint64]]:
    data = np.frombuffer(padded, dtype=np.uint8).astype(np.uint64)
    out = []
    for k in CHAR_GRAMS:
        if data.size < k:
            continue
        powers = _BASE ** np.arange(k, dtype=np.uint64)
        windows = sliding_window_view(data, k)
        out.append(_mix((windows * powers).sum(axis=1, dtype=np.uint64) + _SALT_CHAR * _U64(k)))
    return out


def text_features(text: str, dim: int) -> NDArray[np.float32]:
    """Hashed word 1-2-grams and char 3-5-grams of ``text``, L2-normalised (``dim`` buckets)."""
    words = words_of(text)
    vector = np.zeros(dim, dtype=np.float32)
    if not words:
        return vector
    unique = {w: zlib.crc32(w.encode()) for w in words}
    hashes = np.fromiter((unique[w] for w in words), dtype=np.uint64, count=len(words))
    edges = np.concatenate([[_START], hashes, [_END]])
    bigrams = _mix(edges[:-1] * _BASE + edges[1:] + _SALT_BIGRAM)
    padded = f" {' '.join(words)} ".encode()
    grams = np.concatenate([_mix(hashes), bigrams, *_char_gram_hashes(padded)])
    vector[(grams % _U64(dim)).astype(np.intp)] = 1.0
    return vector / np.float32(np.sqrt(np.count_nonzero(vector)))


def shape_features(text: str) -> NDArray[np.float32]:
    """How long the turn is and whether it is asked as a question (``SHAPE``), in [0, 1]."""
    n = len(words_of(text))
    return np.array(
        [min(n, 40) / 40, float(n <= 2), float(n <= 5), float("?" in text[:MAX_TEXT_CHARS])],
        dtype=np.float32,
    )


def word_features(text: str, dim: int) -> NDArray[np.float32]:
    """:func:`text_features` followed by :func:`shape_features`."""
    return np.concatenate([text_features(text, dim), shape_features(text)])
