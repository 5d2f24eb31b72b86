"""Server-sent events with an event name, as the Responses and Anthropic streams frame them."""

from __future__ import annotations

import json
from collections.abc import Mapping


def named_event(payload: Mapping[str, object]) -> bytes:
    """``event: <payload["type"]>`` then ``data: <payload as JSON>``, and the blank line."""
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return f"event: {payload['type']}\ndata: {data}\n\n".encode()
