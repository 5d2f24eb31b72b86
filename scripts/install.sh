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
pip=(.venv/bin/python -m pip)
"${pip[@]}" install -q --upgrade pip
"${pip[@]}" show torch >/dev/null 2>&1 || "${pip[@]}" install -q torch==2.13.0
find_links=()
stamp=""
if [[ ",$extras," == *",local,"* ]]; then
  # llama.cpp's server compiles from source once (about 6 minutes on 2 cores) into a wheelhouse
  # named after its build flags. The build is portable (AVX2, no -march=native): a native build
  # picks up whatever the compiling CPU has (AMX, AVX-512 variants) and pip's wheel cache would
  # hand it to any other machine sharing the cache; on one such CPU it crashed on first decode.
  llama_version="$(sed -n 's/.*"llama-cpp-python\[server\]==\([^"]*\)".*/\1/p' pyproject.toml)"
  export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF}"
  flags="$(printf '%s %s' "$llama_version" "$CMAKE_ARGS" | sha256sum | cut -c1-12)"
  wheels="${SWITCHBOARD_WHEELHOUSE:-$HOME/.cache/switchboard/wheels}/llama-$flags"
  if ! compgen -G "$wheels/llama_cpp_python-${llama_version}-*.whl" >/dev/null; then
    echo "building llama-cpp-python $llama_version (once, about 6 minutes)" >&2
    "${pip[@]}" wheel -q --no-deps --no-cache-dir --no-binary llama-cpp-python \
      "llama-cpp-python==$llama_version" -w "$wheels"
  fi
  find_links=(--find-links "$wheels")
  # A wheel built elsewhere (another flag set, or pip's cache) must not stay installed.
  stamp=".venv/.llama-build-$flags"
  if [ ! -e "$stamp" ] && "${pip[@]}" show llama-cpp-python >/dev/null 2>&1; then
    "${pip[@]}" uninstall -q -y llama-cpp-python
  fi
fi
"${pip[@]}" install -q "${find_links[@]}" -e ".[${extras}]"
if [ -n "$stamp" ]; then touch "$stamp"; fi
