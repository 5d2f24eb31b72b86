"""The wire formats Switchboard serves besides Chat Completions, translated to the neutral types.

One module per API: pydantic models of its requests, and pure functions between them and
``app.schemas`` (``ChatRequest`` in; ``ChatCompletion`` / ``ChatChunk`` out). The routers in
``routers/`` only call these and the pipeline, so each API reaches every model the same way.
"""
