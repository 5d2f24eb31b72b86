"""The ``/v1/embeddings`` use case: which model embeds, the key's limits and budget, the call.

Two kinds of embeddings model:

- Switchboard's own encoder, the MiniLM transformer, served as ``local/all-minilm-l6-v2``
  (``-int8`` when the int8 encoder is loaded): free, 384 dimensions, L2-normalised, each text
  read up to its first 128 word pieces, never leaving the box. When the router reads static
  vectors (``StaticEncoder``: good for telling prompts apart, not for search), this is the
  transformer loaded beside it for the glasses turns.
- Catalog rows marked ``embeddings`` whose adapter has an embeddings call (``openai_compat``),
  called as named with their row's key, base URL and timeout.

There is no ``auto``: vectors of different models are not comparable, so the caller names the
model. The key's rate limits count the request and its (estimated) tokens; a budget holds the
call's cost at the row's input price and is settled from the tokens the provider reports.
Requests, tokens and cost go to the same Prometheus series as chat.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from adapters.base import EmbeddingAdapter
from app.catalog import Catalog, ModelEntry
from app.embedding.batcher import EmbeddingService
from app.embedding.encoder import INT8, base_model_id, count_tokens
from app.errors import ModelNotFound, RequestError, SwitchboardError, UpstreamUnavailable
from app.metrics import Metrics
from app.pipeline.access import Caller
from app.pipeline.ledger import Ledger
from app.schemas import EmbeddingRequest, Embeddings


def local_model_id(encoder_id: str) -> str:
    """``all-MiniLM-L6-v2@<hash>`` -> ``local/all-minilm-l6-v2`` (``-int8`` for int8)."""
    name = base_model_id(encoder_id).split("@", 1)[0].lower()
    return f"local/{name}" + ("-int8" if encoder_id.endswith(INT8) else "")


@dataclass
class Embedded:
    embeddings: Embeddings
    model: str
    prompt_tokens: int
    headers: dict[str, str]


class EmbeddingCalls:
    """Embeds texts with the named model (see the module docstring)."""

    def __init__(
        self,
        catalog: Catalog,
        adapters: Mapping[str, object],
        availability: Callable[[ModelEntry], str | None],
        encoder: EmbeddingService,
        ledger: Callable[[Caller], Ledger],
        metrics: Metrics,
    ) -> None:
        self.catalog = catalog
        self.adapters = adapters
        self.availability = availability
        self.encoder = encoder
        self.ledger = ledger
        self.metrics = metrics
        self.local_id = local_model_id(encoder.encoder.model_id)

    @property
    def models(self) -> list[ModelEntry]:
        """The catalog's embeddings models."""
        return [m for m in self.catalog.models if "embeddings" in m.capabilities]

    async def run(self, request: EmbeddingRequest, caller: Caller) -> Embedded:
        entry = None if request.model == self.local_id else self._entry(request.model)
        estimate = sum(count_tokens(t) for t in request.texts)
        ledger = self.ledger(caller)
        await ledger.admit(estimate, entry.cost_usd(estimate, 0) if entry else 0.0)
        cost = 0.0
        try:
            if entry is None:
                embeddings = await self._local(request)
                tokens = estimate
            else:
                adapter = self.adapters.get(entry.id)
                assert isinstance(adapter, EmbeddingAdapter)
                embeddings = await adapter.embed(request)
                tokens = embeddings.prompt_tokens or estimate
                cost = entry.cost_usd(tokens, 0)
        except SwitchboardError as exc:
            self.metrics.requests.labels(request.model, "error").inc()
            self.metrics.errors.labels(request.model, exc.code or "error").inc()
            raise
        finally:
            await ledger.settle(cost)
        self.metrics.requests.labels(request.model, "ok").inc()
        self.metrics.tokens.labels(request.model, "prompt").inc(tokens)
        self.metrics.cost.labels(request.model).inc(cost)
        return Embedded(embeddings, request.model, tokens, ledger.headers)

    def _entry(self, model: str) -> ModelEntry:
        entry = self.catalog.get(model)
        known = ", ".join([self.local_id, *(m.id for m in self.models)])
        if entry is None:
            raise ModelNotFound(
                f"model {model!r} is not an embeddings model here; use one of {known}",
                param="model",
            )
        if "embeddings" not in entry.capabilities:
            raise RequestError(
                f"model {model!r} is a chat model; embeddings models: {known}",
                param="model",
                code="model_not_embeddings",
            )
        reason = self.availability(entry)
        if reason:
            raise UpstreamUnavailable(f"model {entry.id!r} is {reason}", code="model_unavailable")
        if not isinstance(self.adapters.get(entry.id), EmbeddingAdapter):
            raise RequestError(
                f"model {model!r}: adapter {entry.adapter!r} has no embeddings call",
                param="model",
            )
        return entry

    async def _local(self, request: EmbeddingRequest) -> Embeddings:
        dim = self.encoder.dim
        if request.dimensions is not None and request.dimensions != dim:
            raise RequestError(
                f"dimensions: {self.local_id} gives {dim} dimensions only", param="dimensions"
            )
        vectors = await asyncio.gather(*(self.encoder.embed(t) for t in request.texts))
        return Embeddings(vectors=[v.tolist() for v in vectors], model=self.local_id)
