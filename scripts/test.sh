#!/usr/bin/env bash
# Set up (first run only) and run the test suite. Extra arguments go to pytest.
# PostgreSQL tests run when BILLING_TEST_DATABASE_URL is set (.ci/run sets it); otherwise they
# are skipped with that reason.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
