#!/usr/bin/env bash
# Install what the tests need (redis-server, espeak-ng, chromium and chromium-driver from apt,
# the Python extras) and run lint, type checks and the whole test suite against real servers on
# 127.0.0.1 (the console test drives the real headless chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  $sudo apt-get install -y -q "${need[@]}"
fi
scripts/install.sh local,test
export HF_HUB_OFFLINE=1
.venv/bin/ruff check app routers adapters tests bench
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
