#!/usr/bin/env bash
# Install (if needed) and start Switchboard with its embedded defaults on 127.0.0.1:8000.
# Extra arguments go to `switchboard serve` (for example --port 9000).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh local
export HF_HUB_OFFLINE=1
exec .venv/bin/switchboard serve "$@"
