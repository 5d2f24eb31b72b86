"""The HTTP edge: error envelopes, body and request limits, strict JSON parsing."""
