"""Observed upstream latency and error rate per model, over a sliding window of recent calls.

The gateway reports every upstream call it makes (``observe``); the selector reads ``expected_s``
to keep models whose recent calls would not fit a request's deadline out of the running, and the
console shows ``summary``. A window of the last ``window`` calls (not a time window) keeps a
rarely used model's figures meaningful, and a few fast calls after an outage win it back.

What counts as a call's latency: until the answer is complete for non-streamed calls, until
the first chunk for streamed ones (the part a client waits through before anything happens).
Figures are per worker process; they describe what this process saw.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

MIN_CALLS = 3
"""Fewer successful calls than this and the expectation is unknown (the model is not judged)."""


@dataclass(frozen=True)
class LatencySummary:
    count: int  # calls in the window, failed ones included
    p50_s: float | None
    p95_s: float | None
    error_rate: float | None


class LatencyTracker:
    def __init__(self, window: int = 200) -> None:
        self.window = window
        self._calls: dict[str, deque[tuple[float, bool]]] = {}

    def observe(self, model: str, seconds: float, ok: bool) -> None:
        calls = self._calls.get(model)
        if calls is None:
            calls = self._calls[model] = deque(maxlen=self.window)
        calls.append((seconds, ok))

    def summary(self, model: str) -> LatencySummary:
        calls = self._calls.get(model)
        if not calls:
            return LatencySummary(0, None, None, None)
        durations = np.array([s for s, ok in calls if ok], dtype=np.float64)
        errors = sum(1 for _, ok in calls if not ok)
        if durations.size == 0:
            return LatencySummary(len(calls), None, None, errors / len(calls))
        p50, p95 = np.percentile(durations, [50, 95])
        return LatencySummary(len(calls), float(p50), float(p95), errors / len(calls))

    def expected_s(self, model: str) -> float | None:
        """Median latency of the model's recent successful calls; None until there are a few."""
        calls = self._calls.get(model)
        if not calls:
            return None
        durations = [s for s, ok in calls if ok]
        if len(durations) < MIN_CALLS:
            return None
        return float(np.median(durations))
