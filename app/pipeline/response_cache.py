"""An opt-in response cache: exact match, and semantic match that refuses near-miss questions.

What must match is keyed per tenant (API key): the model asked for, the system prompt and the
conversation before the last message, the sampling parameters and routing preferences, and
every part of the last message but its words (images and audio, hashed with the rest), so the
same question about another photo misses. Exact hits need the last message's text to be
identical. Semantic hits need its
embedding within ``threshold`` cosine of a cached one AND a paraphrase-only difference: every
word that differs between the two turns must be a function word ("do" vs "can", "a" vs "the").
That guard is what stops the classic semantic-cache failure, where "is it safe to mix bleach
and ammonia?" would be answered with the cached reply to "is it unsafe ...?", or a question
about 15% of 80 with the answer about 15% of 90: embeddings put such pairs at 0.9+ cosine.

Only complete non-streaming answers are cached; errors and streams never are. Anonymous calls
are never cached (the chat endpoint does not ask): without a key the service cannot tell two
callers apart, and one tenant shared by all of them would hand one person's answer, built on
their conversation, to anyone who sends the same last words.
"""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np

from app.schemas import ChatRequest
from app.state import StateStore, StateUnavailable

FUNCTION_WORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "is",
        "are",
        "was",
        "were",
        "be",
        "do",
        "does",
        "did",
        "can",
        "could",
        "would",
        "will",
        "shall",
        "should",
        "may",
        "might",
        "must",
        "i",
        "me",
        "my",
        "you",
        "your",
        "we",
        "our",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "to",
        "of",
        "in",
        "on",
        "at",
        "for",
        "with",
        "by",
        "from",
        "about",
        "as",
        "and",
        "or",
        "please",
        "tell",
        "explain",
        "what",
        "how",
        "why",
        "when",
        "where",
        "which",
        "who",
        "whom",
        "whose",
        "there",
        "here",
        "so",
        "just",
        "kindly",
        "quickly",
        "briefly",
        "me",
        "us",
    ]
)
_WORD = re.compile(r"[\w%$€£.'-]+", re.UNICODE)


def _words(text: str) -> set[str]:
    return {w.strip(".'-").lower() for w in _WORD.findall(text) if w.strip(".'-")}


def paraphrase_only(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` differ only in function words (no number, name or negation)."""
    return not ((_words(a) ^ _words(b)) - FUNCTION_WORDS)


def _digest(payload: object) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


class ResponseCache:
    def __init__(self, store: StateStore, ttl_s: float, threshold: float, max_entries: int = 200):
        self.store = store
        self.ttl_s = ttl_s
        self.threshold = threshold
        self.max_entries = max_entries

    @staticmethod
    def scope(request: ChatRequest, tenant: str) -> str:
        """Everything but the last message's text that must match for a cached answer to fit."""
        body = request.model_dump(mode="json", exclude={"stream", "stream_options", "user"})
        last = body["messages"].pop()
        content = last.get("content")
        last["content"] = (
            [{"type": "text"} if p.get("type") == "text" else p for p in content]
            if isinstance(content, list)
            else None
        )  # the words are matched apart (exactly, or as a paraphrase); the rest must be equal
        return _digest({"tenant": tenant, "request": body, "last": last})

    async def get(self, request: ChatRequest, tenant: str, embedding: np.ndarray) -> str | None:
        scope = self.scope(request, tenant)
        text = request.messages[-1].text()
        try:
            exact = await self.store.cache_get(_digest([scope, text]))
            if exact is not None:
                return exact.decode()
            for cached_text, vector in await self.store.semantic_entries(scope):
                if float(vector @ embedding) >= self.threshold and paraphrase_only(
                    text, cached_text
                ):
                    hit = await self.store.cache_get(_digest([scope, cached_text]))
                    return hit.decode() if hit is not None else None
        except StateUnavailable:
            return None
        return None

    async def put(
        self, request: ChatRequest, tenant: str, embedding: np.ndarray, reply: str
    ) -> None:
        scope = self.scope(request, tenant)
        text = request.messages[-1].text()
        try:
            await self.store.cache_set(_digest([scope, text]), reply.encode(), self.ttl_s)
            await self.store.semantic_add(scope, text, embedding, self.ttl_s, self.max_entries)
        except StateUnavailable:
            return
