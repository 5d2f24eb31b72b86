"""Which capabilities a smart-glasses turn needs (``vision``, ``web_search``, both or neither).

Glasses traffic is a spoken question, usually with a photo attached, in a running conversation.
Most photos are incidental: "how many grams in an ounce" arrives with a picture of the kitchen.
So an image part alone never means ``vision``; the words decide, and the conversation decides
for follow-ups ("and tomorrow?" after a forecast still needs ``web_search``).

Why it is built this way:

- **Learned, not keyword lists.** Every signal is a logistic-regression head fitted offline by
  ``scripts/fit_turn_classifier.py`` on ``app/data/glasses_turns.jsonl`` (our own labelled
  conversations, which double as the declared examples of each capability). The weights are
  plain numbers in ``app/data/turn_classifier.json``: no pickle, loads in a few ms.
- **Features.** The all-MiniLM-L6-v2 embedding the service already computed, plus hashed word
  1-2-grams and character 3-5-grams of the transcript (4096 buckets). Mean-pooled embeddings
  are dominated by the topic and blur the small words that decide the capability ("this",
  "that one", "right now"); the hashed n-grams give them back, and the char grams absorb
  transcription spelling ("whats", "tonite"). Grouped CV, exact capability set: embedding
  alone 0.83, with n-grams 0.91 (vision on first turns 0.88 -> 0.95).
- **Follow-ups inherit.** A follow-up head reads the turn, the previous user turn's embedding
  and their cosine similarity. A follow-up keeps the previous turn's capabilities (as decided
  then) and adds its own only when confident (``Thresholds.added``): short anaphoric turns
  ("why is that?") otherwise look like photo questions. ``topic_changed`` is "not a
  follow-up and dissimilar to the previous turn" (a same-topic, self-contained question is
  neither).
- **Cross-validated.** ``bench/capabilities_cv.py`` runs 5-fold CV grouped by conversation,
  deciding each held-out conversation turn by turn with the capabilities predicted earlier
  (as in service), so one wrong first turn also costs its follow-ups. On 1987 turns in 794
  conversations (seeds 0-2, nested threshold choice within 0.4 point): exact set 0.90-0.91,
  vision accuracy 0.94 (recall 0.90, precision 0.97), web_search 0.96 (recall 0.92,
  precision 0.92), follow-up 0.94, topic change 0.92-0.94.

The photo's pixels are never read: the decision must be made before any vision model runs,
and it must cost well under a millisecond after the embedding.
"""

from __future__ import annotations

import json
import math
import string
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from app.errors import ConfigError

Vector = NDArray[np.float32]

CAPABILITIES = ("vision", "web_search")
DATA_DIR = Path(__file__).resolve().parent.parent / "data"
DEFAULT_WEIGHTS = DATA_DIR / "turn_classifier.json"
DEFAULT_TURNS = DATA_DIR / "glasses_turns.jsonl"
FORMAT = 1

_PUNCTUATION = str.maketrans({c: " " for c in string.punctuation + "“”‘’¿¡…" if c not in "'’"})
_APOSTROPHES = str.maketrans("", "", "'’")


@dataclass(frozen=True)
class PreviousTurn:
    text: str
    capabilities: tuple[str, ...]
    model: str | None = None


@dataclass(frozen=True)
class TurnContext:
    text: str
    has_image: bool
    previous: list[PreviousTurn] = field(default_factory=list)  # earlier user turns, oldest first


@dataclass(frozen=True)
class TurnDecision:
    capabilities: tuple[str, ...]
    followup: bool
    topic_changed: bool
    scores: dict[str, float]  # P(vision), P(web_search); with a previous turn also
    # P(followup) and the cosine "similarity" to it: for the debug field and for audits


def text_features(text: str, dim: int) -> Vector:
    """Hashed word 1-2-grams and char 3-5-grams of ``text``, L2-normalised (``dim`` buckets)."""
    words = text.lower().translate(_APOSTROPHES).translate(_PUNCTUATION).split()
    grams = words + [f"{a} {b}" for a, b in zip(["<s>", *words], [*words, "</s>"], strict=True)]
    padded = f" {' '.join(words)} "
    grams += [f"#{padded[i : i + k]}" for k in (3, 4, 5) for i in range(len(padded) - k + 1)]
    vector = np.zeros(dim, dtype=np.float32)
    for gram in grams:
        vector[zlib.crc32(gram.encode()) % dim] = 1.0
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector


def capability_features(embedding: Vector, text_vector: Vector) -> Vector:
    return np.concatenate([embedding, text_vector]).astype(np.float32)


def followup_features(turn: Vector, previous: Vector, similarity: float) -> Vector:
    """``turn`` is the output of :func:`capability_features`; ``previous`` the prior embedding."""
    return np.concatenate([turn, previous, [similarity]]).astype(np.float32)


@dataclass(frozen=True)
class LinearHead:
    """One logistic-regression head: P(yes) = sigmoid(x . weights + bias)."""

    weights: Vector
    bias: float

    def probability(self, x: Vector) -> float:
        z = float(x @ self.weights) + self.bias
        return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


@dataclass(frozen=True)
class Thresholds:
    capability: float = 0.5  # own evidence of a self-contained turn
    followup: float = 0.5
    added: float = 0.7  # own evidence a follow-up needs on top of what it inherits
    topic_similarity: float = 0.3  # a non-follow-up below this similarity changed the topic


@dataclass(frozen=True)
class TurnClassifier:
    heads: dict[str, LinearHead]  # "vision", "web_search", "followup"
    text_dim: int
    thresholds: Thresholds
    model_id: str  # the embedding model the heads were fitted on

    @classmethod
    def load(cls, path: Path | None = None) -> TurnClassifier:
        """The bundled weights (or those at ``path``), as written by the fit script."""
        path = path or DEFAULT_WEIGHTS
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"cannot load turn classifier weights from {path}: {exc}") from exc

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> TurnClassifier:
        if data.get("format") != FORMAT:
            raise ValueError(f"unknown format {data.get('format')!r}")
        heads = {
            name: LinearHead(np.asarray(head["weights"], dtype=np.float32), float(head["bias"]))
            for name, head in dict(data["heads"]).items()  # type: ignore[call-overload]
        }
        thresholds = Thresholds(**dict(data["thresholds"]))  # type: ignore[call-overload]
        return cls(heads, int(data["text_dim"]), thresholds, str(data["model_id"]))  # type: ignore[call-overload]

    def to_dict(self) -> dict[str, object]:
        return {
            "format": FORMAT,
            "model_id": self.model_id,
            "text_dim": self.text_dim,
            "thresholds": self.thresholds.__dict__,
            "heads": {
                name: {
                    "bias": float(f"{head.bias:.7g}"),
                    "weights": [float(f"{w:.6g}") for w in head.weights.tolist()],
                }
                for name, head in self.heads.items()
            },
        }

    def decide(
        self,
        turn_embedding: np.ndarray,
        previous_embedding: np.ndarray | None,
        context: TurnContext,
    ) -> TurnDecision:
        """Capabilities of this turn; ``previous_embedding`` embeds ``context.previous[-1]``.

        Without a previous turn (or its embedding) the turn is judged on its own and neither a
        follow-up nor a topic change. ``vision`` is only ever returned with a photo attached.
        """
        embedding = np.asarray(turn_embedding, dtype=np.float32)
        x = capability_features(embedding, text_features(context.text, self.text_dim))
        scores = {c: self.heads[c].probability(x) for c in CAPABILITIES}
        followup = topic_changed = False
        if context.previous and previous_embedding is not None:
            previous = np.asarray(previous_embedding, dtype=np.float32)
            similarity = float(embedding @ previous)
            scores["similarity"] = similarity
            scores["followup"] = self.heads["followup"].probability(
                followup_features(x, previous, similarity)
            )
            followup = scores["followup"] >= self.thresholds.followup
            topic_changed = not followup and similarity < self.thresholds.topic_similarity
        bar = self.thresholds.added if followup else self.thresholds.capability
        needed = {c for c in CAPABILITIES if scores[c] >= bar}
        if followup:
            needed.update(c for c in context.previous[-1].capabilities if c in CAPABILITIES)
        if not context.has_image:
            needed.discard("vision")
        return TurnDecision(
            tuple(c for c in CAPABILITIES if c in needed), followup, topic_changed, scores
        )


@dataclass(frozen=True)
class LabelledTurn:
    """One user turn of ``glasses_turns.jsonl``; a conversation's turns are contiguous.

    Labelling rules: ``vision`` when the answer depends on what the camera shows (reading a
    price tag or a sign is vision only); ``web_search`` for facts that change or are local
    (forecasts, scores, opening hours, market prices, news, traffic, timetables, "near me",
    current office holders). A follow-up cannot be understood without the previous turn and
    its labels include that turn's; ``topic_changed`` is a non-follow-up on another subject.
    A first turn is neither. About one turn in ten has no photo, and then never ``vision``
    (a few of those still ask about one, as when the camera failed).
    """

    conversation: str
    index: int  # position in its conversation, 0 first
    text: str
    labels: tuple[str, ...]
    followup: bool
    topic_changed: bool
    has_image: bool
    scene: str  # what the camera shows; only used to draw the placeholder photo

    @property
    def image_name(self) -> str | None:
        """File name of the generated photo (``scripts/make_glasses_images.py``), if any."""
        return f"{self.conversation}-{self.index}.jpg" if self.has_image else None


def _labelled(record: dict[str, object], previous: LabelledTurn | None) -> LabelledTurn:
    labels = record["labels"]
    if not isinstance(labels, list) or not set(labels) <= set(CAPABILITIES):
        raise ValueError(f"labels must be a subset of {CAPABILITIES}")
    turn = LabelledTurn(
        str(record["conversation"]),
        int(str(record["turn"])),
        str(record["text"]),
        tuple(c for c in CAPABILITIES if c in labels),
        bool(record["is_followup"]),
        bool(record["topic_changed"]),
        bool(record["has_image"]),
        str(record.get("scene", "")),
    )
    continues = previous is not None and previous.conversation == turn.conversation
    if turn.index != (previous.index + 1 if continues and previous else 0):
        raise ValueError("turns of a conversation must be contiguous and numbered from 0")
    return turn


def load_labelled_turns(path: Path | None = None) -> list[LabelledTurn]:
    """Read the labelled glasses conversations; a bad line raises ``ConfigError``."""
    path = path or DEFAULT_TURNS
    turns: list[LabelledTurn] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        if line.strip():
            try:
                turns.append(_labelled(json.loads(line), turns[-1] if turns else None))
            except (ValueError, KeyError, TypeError) as exc:
                raise ConfigError(f"{path}:{number}: not a labelled glasses turn: {exc}") from exc
    return turns
