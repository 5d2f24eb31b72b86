#!/usr/bin/env bash
# Refresh the hash-locked requirement files in requirements/ after a dependency changes in
# pyproject.toml (or to take newer releases): scripts/lock.sh, then review and commit the diff.
#   runtime.lock  what the service runs: the dependencies and the `local` extra (the Docker image)
#   test.lock     the same pins plus the `test` extra (scripts/install.sh local,test)
#   llama.lock    the llama-cpp-python sdist that install.sh and the Dockerfile compile
#   pip.lock      pip itself; tools.lock: uv, in a venv of its own under ~/.cache/switchboard
# uv resolves; the output is plain pip requirements, installed with `pip --require-hashes`.
# Only PyPI and a source for torch's CPU wheel are needed: a local wheelhouse
# (SWITCHBOARD_TORCH_WHEELS, default /opt/wheels) when it exists, else the PyTorch CPU index.
set -euo pipefail
cd "$(dirname "$0")/.."
tools="${XDG_CACHE_HOME:-$HOME/.cache}/switchboard/lock-tools"
if [ ! -x "$tools/bin/uv" ]; then
  python3 -m venv "$tools"
  "$tools/bin/python" -m pip install -q --require-hashes -r requirements/tools.lock
fi
uv=("$tools/bin/uv" pip compile --quiet --generate-hashes --python-version 3.11
    --python-platform x86_64-manylinux_2_28 --custom-compile-command scripts/lock.sh)
wheels="${SWITCHBOARD_TORCH_WHEELS:-/opt/wheels}"
if [ -d "$wheels" ]; then
  torch=(--find-links "$wheels")
else
  torch=(--extra-index-url https://download.pytorch.org/whl/cpu --index-strategy unsafe-best-match)
fi
common=(pyproject.toml --extra local --override requirements/overrides.txt
        --no-emit-package llama-cpp-python "${torch[@]}")
# test.lock first: runtime.lock is then resolved inside it, so the two never disagree.
"${uv[@]}" "${common[@]}" --extra test -o requirements/test.lock
"${uv[@]}" "${common[@]}" --constraint requirements/test.lock -o requirements/runtime.lock
llama="$(sed -n 's/.*"llama-cpp-python\[server\]==\([^"]*\)".*/\1/p' pyproject.toml)"
echo "llama-cpp-python==$llama" | "${uv[@]}" --no-deps --no-binary llama-cpp-python - -o requirements/llama.lock
"${uv[@]}" requirements/pip.in -o requirements/pip.lock
"${uv[@]}" requirements/tools.in -o requirements/tools.lock
echo "locked: $(grep -c '^[a-z]' requirements/runtime.lock) runtime, $(grep -c '^[a-z]' requirements/test.lock) with tests"
