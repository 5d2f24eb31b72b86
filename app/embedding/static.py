"""Static query vectors: each token's vector read once from the transformer (``StaticEncoder``).

The default router encoder (``app.embedding.encoder``, module docstring): the same routing
quality as the transformer for the tokenizer's time. ``load_encoder(backend="static")`` makes
the token table once in the cache (``token_table``) and loads this encoder over it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from app.embedding.encoder import (
    CHARS_PER_TOKEN_BOUND,
    DEFAULT_MAX_TOKENS,
    OnnxEncoder,
    Vectors,
    bounded_tokenizer,
    bounded_tokens,
    clipped,
    embedding_id,
    max_seq_length,
    weights_model_id,
)

HEAD_CHARS_PER_TOKEN = 6
"""Characters per token a static encoder reads first (``StaticEncoder.token_ids``): English
runs about 4.5, so the first 128 tokens nearly always lie in the first 768 characters."""


class StaticEncoder:
    """Each token's vector read once from the transformer; a text is the mean of its tokens'.

    The table holds, for every token of the vocabulary, the transformer's embedding of that
    token alone (``[CLS] token [SEP]``, mean-pooled, as the model embeds a one-word text), less
    the mean over the vocabulary, made once from the same weights (``token_table``). A text's
    vector is the mean of its tokens' rows, unit length: no attention, so word order and
    context are lost, but what a prompt is about (its domain, its task, its vocabulary) is
    kept, and that is what routing reads. Without the centring every text would share one large
    component, the vocabulary's mean; with it, similar prompts stand out.
    By the same cross-validation on both shared files its routing quality is the transformer's
    (README, "Embedding backends"), for the tokenizer's time and a few microseconds, whatever
    the length: no thread pool, no batching, no queue.
    """

    inline = True
    """Cheap enough to run on the event loop (``app.embedding.batcher``)."""

    def __init__(
        self, path: Path, table_path: Path, *, max_tokens: int | None = DEFAULT_MAX_TOKENS
    ) -> None:
        window = max_seq_length(path)
        self.max_tokens = bounded_tokens(max_tokens, window)
        self.model_id = embedding_id(
            weights_model_id(path), max_tokens=self.max_tokens, window=window, static=True
        )
        self._table: Vectors = np.load(table_path, mmap_mode="r")  # shared by the workers
        self.dim = int(self._table.shape[1])
        self._tokenizer = bounded_tokenizer(path, self.max_tokens)
        self.max_chars = self.max_tokens * CHARS_PER_TOKEN_BOUND
        specials = [self._tokenizer.token_to_id(t) for t in ("[CLS]", "[SEP]")]
        self._empty = np.asarray(self._table[specials]).sum(axis=0)  # a text with no tokens

    def encode(self, texts: Sequence[str]) -> Vectors:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for row, ids in enumerate(self.token_ids(texts)):
            summed = np.asarray(self._table[ids]).sum(axis=0) if ids else self._empty
            out[row] = summed / max(float(np.linalg.norm(summed)), 1e-12)
        return out

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Each text's first ``max_tokens`` tokens, reading as little of it as they need.

        The tokenizer is most of a long text's cost, and it reads everything it is given before
        truncating. So each text's first ``HEAD_CHARS_PER_TOKEN`` characters per token are tried
        first; when the tokens kept all end before a space in that head, they are the whole
        text's (the tokenizer splits words at spaces, so nothing after one can change them).
        Otherwise the text is read to ``max_chars`` as before.
        """
        whole = clipped(texts, self.max_chars)
        heads = [text[: self.max_tokens * HEAD_CHARS_PER_TOKEN] for text in whole]
        found = self._tokenizer.encode_batch(heads, add_special_tokens=False)
        ids: list[list[int]] = [encoding.ids for encoding in found]
        again = [
            i for i, (text, head, encoding) in enumerate(zip(whole, heads, found, strict=True))
            if len(head) < len(text) and not self._complete(head, encoding)
        ]  # fmt: skip
        if again:
            rest = [whole[i] for i in again]
            redone = self._tokenizer.encode_batch(rest, add_special_tokens=False)
            for i, encoding in zip(again, redone, strict=True):
                ids[i] = encoding.ids
        return ids

    def _complete(self, head: str, encoding: Any) -> bool:
        """Whether ``head`` holds all ``max_tokens`` tokens and a space after the last."""
        if len(encoding.ids) < self.max_tokens:
            return False
        end = encoding.offsets[self.max_tokens - 1][1]
        return any(c.isspace() for c in head[end:])


def token_table(encoder: OnnxEncoder, table_path: Path) -> Path:
    """Every vocabulary token's embedding alone (``[CLS] token [SEP]``, mean-pooled, not unit),
    less their mean."""
    tokenizer = encoder._tokenizer
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    size = tokenizer.get_vocab_size()
    table = np.empty((size, encoder.dim), dtype=np.float32)
    for start in range(0, size, 512):
        tokens = np.arange(start, min(size, start + 512), dtype=np.int64)
        ids = np.stack([np.full_like(tokens, cls), tokens, np.full_like(tokens, sep)], axis=1)
        table[start : start + len(tokens)] = encoder.pooled(ids)
    table -= table.mean(axis=0)
    tmp = table_path.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(tmp, table)
    tmp.replace(table_path)
    return table_path
