#!/usr/bin/env bash
# Create ./.venv (if missing) and install billing with its development tools into it.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.billing-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  # dev includes the sandbox extra (localstripe, aiohttp) that demo.sh and the tests need.
  .venv/bin/python -m pip install --quiet -e ".[sandbox,dev]"
  touch "$stamp"
fi
