#!/usr/bin/env bash
# Set up (first run only) and run the test suite in parallel (pytest-xdist, one process per core
# unless BILLING_TEST_WORKERS says otherwise). Extra arguments go to pytest.
#   bash scripts/test.sh              the whole suite (SQLite; PostgreSQL too when
#                                     BILLING_TEST_DATABASE_URL is set, as .ci/run does)
#   bash scripts/test.sh --quick      the inner loop: everything not marked slow
#   bash scripts/test.sh -n 0 tests/cli/test_plans_cli.py    one file, in this process
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
args=()
quick=0
for arg in "$@"; do
  if [ "$arg" = "--quick" ]; then quick=1; else args+=("$arg"); fi
done
if [ "$quick" = 1 ]; then
  args=(-m "not slow and not postgres" "${args[@]}")
fi
exec .venv/bin/python -m pytest -n "${BILLING_TEST_WORKERS:-auto}" --dist worksteal "${args[@]}"
