#!/usr/bin/env bash
# Set up (first run only) and run the scripted tour on a throwaway database and local Stripe sandbox.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/billing demo "$@"
