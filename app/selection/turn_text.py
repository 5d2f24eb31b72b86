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
at once with numpy (a polynomial hash over a sliding window of the UTF-8 bytes, built up one
length at a time, then a multiplicative mix), so no Python object is made per gram.
"""

from __future__ import annotations

import string
import zlib

import numpy as np
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
_POWERS = _BASE ** np.arange(CHAR_GRAMS[-1], dtype=np.uint64)


def words_of(text: str) -> list[str]:
    """Lower-case words of the first ``MAX_TEXT_CHARS`` characters, punctuation removed."""
    clipped = text[:MAX_TEXT_CHARS].lower()
    return clipped.translate(_APOSTROPHES).translate(_PUNCTUATION).split()


def _mix(hashes: NDArray[np.uint64]) -> NDArray[np.uint64]:
    mixed = hashes * _MIX
    return mixed ^ (mixed >> _U64(29))


def _char_gram_hashes(padded: bytes) -> list[NDArray[np.uint64]]:
    """The hash of every window of each length in ``CHAR_GRAMS``: sum of byte * BASE ** offset.

    Built up one length at a time (the windows of length k are those of length k - 1 plus one
    more byte), a few whole-array operations per length and no window matrix.
    """
    data = np.frombuffer(padded, dtype=np.uint8).astype(np.uint64)
    out = []
    window = data
    for k in range(2, CHAR_GRAMS[-1] + 1):
        if data.size < k:
            break
        window = window[: data.size - k + 1] + data[k - 1 :] * _POWERS[k - 1]
        if k in CHAR_GRAMS:
            out.append(_mix(window + _SALT_CHAR * _U64(k)))
    return out


def text_features(text: str, dim: int) -> NDArray[np.float32]:
    """Hashed word 1-2-grams and char 3-5-grams of ``text``, L2-normalised (``dim`` buckets)."""
    return _hashed(words_of(text), dim)


def shape_features(text: str) -> NDArray[np.float32]:
    """How long the turn is and whether it is asked as a question (``SHAPE``), in [0, 1]."""
    return _shape(words_of(text), text)


def word_features(text: str, dim: int) -> NDArray[np.float32]:
    """:func:`text_features` followed by :func:`shape_features` (the words split once)."""
    words = words_of(text)
    return np.concatenate([_hashed(words, dim), _shape(words, text)])


def _hashed(words: list[str], dim: int) -> NDArray[np.float32]:
    vector = np.zeros(dim, dtype=np.float32)
    if not words:
        return vector
    unique = {w: zlib.crc32(w.encode()) for w in words}
    hashes = np.fromiter((unique[w] for w in words), dtype=np.uint64, count=len(words))
    edges = np.concatenate([[_START], hashes, [_END]])
    bigrams = _mix(edges[:-1] * _BASE + edges[1:] + _SALT_BIGRAM)
    padded = f" {' '.join(words)} ".encode()
    grams = np.concatenate([_mix(hashes), bigrams, *_char_gram_hashes(padded)])
    # a power-of-two dim (the shipped 4096) takes the low bits: the same buckets as %, cheaper
    buckets = grams & _U64(dim - 1) if dim & (dim - 1) == 0 else grams % _U64(dim)
    vector[buckets.astype(np.intp)] = 1.0
    return vector / np.float32(np.sqrt(np.count_nonzero(vector)))


def _shape(words: list[str], text: str) -> NDArray[np.float32]:
    n = len(words)
    return np.array(
        [min(n, 40) / 40, float(n <= 2), float(n <= 5), float("?" in text[:MAX_TEXT_CHARS])],
        dtype=np.float32,
    )
