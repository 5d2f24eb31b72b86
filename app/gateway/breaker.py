"""Per-model circuit breakers: stop sending to a provider that keeps failing, probe it later.

Closed -> (``failures`` consecutive failures) -> open for ``cooldown_s`` -> half-open: one probe
request is let through; success closes the breaker, failure opens it again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class _State:
    failures: int = 0
    opened_at: float | None = None
    probing: bool = False


class CircuitBreakers:
    def __init__(self, failures: int = 5, cooldown_s: float = 30.0) -> None:
        self.threshold = failures
        self.cooldown_s = cooldown_s
        self._states: dict[str, _State] = {}
        self.opened: list[str] = []
        """Models this worker opened since the last ``app.gateway.breaker_sync`` publish."""

    def is_open(self, model: str) -> bool:
        """True while ``model`` must not be chosen (open, or half-open with a probe in flight)."""
        state = self._states.get(model)
        if state is None or state.opened_at is None:
            return False
        if time.monotonic() - state.opened_at < self.cooldown_s:
            return True
        return state.probing

    def begin(self, model: str) -> None:
        """A call to ``model`` starts; after the cooldown it is the half-open probe."""
        state = self._states.get(model)
        if state is not None and state.opened_at is not None:
            state.probing = True

    def release(self, model: str) -> None:
        """A call ended with no verdict on the provider (the caller left, a 4xx, our own limit):
        a half-open probe is over, so the next call probes again."""
        state = self._states.get(model)
        if state is not None:
            state.probing = False

    def success(self, model: str) -> None:
        self._states.pop(model, None)

    def failure(self, model: str) -> None:
        state = self._states.setdefault(model, _State())
        state.failures += 1
        state.probing = False
        if state.failures >= self.threshold:
            state.opened_at = time.monotonic()
            self.opened.append(model)

    def open_for(self, model: str, remaining_s: float) -> None:
        """Open ``model`` for ``remaining_s`` more seconds (another worker saw it fail)."""
        state = self._states.setdefault(model, _State())
        opened_at = time.monotonic() - max(0.0, self.cooldown_s - remaining_s)
        if state.opened_at is None or opened_at > state.opened_at:
            state.failures = max(state.failures, self.threshold)
            state.opened_at = opened_at

    def status(self, model: str) -> str:
        state = self._states.get(model)
        if state is None or state.opened_at is None:
            return "closed"
        return "open" if self.is_open(model) and not state.probing else "half_open"
