"""Per-model circuit breakers: stop sending to a provider that keeps failing, probe it later.

Closed -> (``failures`` consecutive failures) -> open for ``cooldown_s`` -> half-open: the next
call is the probe, and nobody else is sent while it is in flight. Every probe resolves:

- success, or an answer that is the caller's fault (a 4xx: the provider is up) closes it;
- a failure opens it again for a full cooldown;
- anything else (the call was cancelled, the adapter raised something unexpected) releases
  it: there is no evidence either way, so the next call probes;
- a probe that never reports back (a leaked task) counts as released after a cooldown.

So no sequence of outcomes leaves a model unavailable on a worker for good
(``tests/app/test_breaker.py`` checks that over random sequences). Callers say
``token = begin(model)`` when a call starts, ``success``/``failure`` when it has an answer, and
``end(model, token)`` when it is over, however it ended (a ``finally``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _State:
    failures: int = 0
    opened_at: float | None = None
    probe: int = 0
    """Token of the probe in flight (0: none)."""
    probe_started: float = 0.0


class CircuitBreakers:
    def __init__(
        self,
        failures: int = 5,
        cooldown_s: float = 30.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = failures
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._states: dict[str, _State] = {}
        self._tokens = 0
        self.opened: list[str] = []
        """Models this worker opened since the last ``app.gateway.breaker_sync`` publish."""

    def _probe_live(self, state: _State) -> bool:
        return state.probe != 0 and self._clock() - state.probe_started < self.cooldown_s

    def _cooling(self, state: _State) -> bool:
        return state.opened_at is not None and self._clock() - state.opened_at < self.cooldown_s

    def is_open(self, model: str) -> bool:
        """True while ``model`` must not be chosen (open, or half-open with a probe in flight)."""
        state = self._states.get(model)
        if state is None or state.opened_at is None:
            return False
        return self._cooling(state) or self._probe_live(state)

    def probing(self, model: str) -> bool:
        """Whether a half-open probe of ``model`` is in flight."""
        state = self._states.get(model)
        return state is not None and self._probe_live(state)

    def begin(self, model: str) -> int:
        """A call to ``model`` starts; returns its token for ``end`` (non-zero: it is the probe).

        After the cooldown the first call is the half-open probe.
        """
        state = self._states.get(model)
        if state is None or state.opened_at is None or self._cooling(state):
            return 0
        if self._probe_live(state):
            return 0
        self._tokens += 1
        state.probe, state.probe_started = self._tokens, self._clock()
        return state.probe

    def end(self, model: str, token: int) -> None:
        """The call ``token`` is over; a probe it left unresolved is released."""
        state = self._states.get(model)
        if token and state is not None and state.probe == token:
            state.probe = 0

    def success(self, model: str) -> None:
        self._states.pop(model, None)

    def failure(self, model: str) -> None:
        state = self._states.setdefault(model, _State())
        state.failures += 1
        state.probe = 0
        if state.failures >= self.threshold:
            state.opened_at = self._clock()
            self.opened.append(model)

    def open_for(self, model: str, remaining_s: float) -> None:
        """Open ``model`` for ``remaining_s`` more seconds (another worker saw it fail)."""
        state = self._states.setdefault(model, _State())
        opened_at = self._clock() - max(0.0, self.cooldown_s - remaining_s)
        if state.opened_at is None or opened_at > state.opened_at:
            state.failures = max(state.failures, self.threshold)
            state.opened_at = opened_at

    def status(self, model: str) -> str:
        state = self._states.get(model)
        if state is None or state.opened_at is None:
            return "closed"
        return "open" if self._cooling(state) else "half_open"
