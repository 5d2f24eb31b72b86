#!/usr/bin/env bash
# Install Switchboard into ./.venv. Usage: scripts/install.sh [extras], e.g. "local" or "local,test".
# Torch is pinned to the CPU build first, so sentence-transformers does not pull a CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-local}"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null 2>&1 || python=python3
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip show torch >/dev/null 2>&1 || .venv/bin/python -m pip install -q torch==2.13.0
# llama.cpp's server compiles from source once (about 4 minutes on 2 cores); pip caches the wheel.
export CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF}"
.venv/bin/python -m pip install -q -e ".[${extras}]"
