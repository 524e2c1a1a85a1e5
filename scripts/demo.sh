#!/usr/bin/env bash
# Set up (first run only takes a while) and run the demo hub on the embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/fusionhub demo "$@"
