#!/usr/bin/env bash
# Set up everything the tests need, then run the whole suite (extra arguments go to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
.venv/bin/python -m ruff check .
.venv/bin/python -m mypy
rc=0
PYTHONFAULTHANDLER=1 .venv/bin/python -m pytest "$@" || rc=$?
if (( rc > 128 )) && [[ -s var/test-running.txt ]]; then
    # a crash in native code may print no traceback: say at least which test was running
    echo "pytest died of signal $((rc - 128)) while running $(cat var/test-running.txt)" >&2
fi
exit "$rc"
