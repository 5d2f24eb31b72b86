"""Whether a catalog model can be called right now, and if not, why."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.catalog import ModelEntry
from app.gateway.breaker import CircuitBreakers
from app.gateway.local_servers import LocalServer


@dataclass
class Availability:
    """Why a catalog model cannot be called right now (None when it can)."""

    breakers: CircuitBreakers
    local: dict[str, LocalServer] = field(default_factory=dict)
    local_failures: dict[str, str] = field(default_factory=dict)

    def __call__(self, entry: ModelEntry) -> str | None:
        if entry.missing_key():
            return f"unavailable: {entry.api_key_env} is not set"
        if entry.launch is not None:
            if entry.id in self.local_failures:
                return f"unavailable: local server failed ({self.local_failures[entry.id]})"
            server = self.local.get(entry.id)
            if server is None:
                return "unavailable: local server not running"
            if not server.running:
                return f"unavailable: local server {server.status()['state']}"
        if self.breakers.is_open(entry.id):
            return "unavailable: circuit breaker open after repeated failures"
        return None

    def temporarily_down(self, entry: ModelEntry) -> bool:
        """Down for now but coming back by itself (a restarting server, an open breaker)."""
        server = self.local.get(entry.id)
        restarting = server is not None and not server.running and server.state != "stopped"
        return restarting or self.breakers.is_open(entry.id)

    def report(self, entries: list[ModelEntry]) -> dict[str, dict[str, object]]:
        """Per model: available or why not, and the state of its local server if it has one."""
        models: dict[str, dict[str, object]] = {}
        for entry in entries:
            reason = self(entry)
            row: dict[str, object] = {"available": reason is None, "reason": reason}
            server = self.local.get(entry.id)
            if server is not None:
                row["local_server"] = server.status()
            models[entry.id] = row
        return models
