#!/usr/bin/env bash
# The whole test suite on a fresh machine: install, start the real Kafka and PostgreSQL
# servers on 127.0.0.1, lint and type-check, run pytest (extra arguments go to pytest), then a
# small benchmark run as a smoke test.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install.sh
bash scripts/postgres.sh start
bash scripts/kafka.sh start --fresh

echo "== ruff"
.venv/bin/ruff check .
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
.venv/bin/pytest "$@"
echo "== bench (smoke run: figures printed, nothing asserted on time; full run: docs/PERFORMANCE.md)"
.venv/bin/python -m bench.run --accounts 100 --events 3000 --output bench/out/smoke.json 2>&1 \
  | grep -v -E '^(WARNING|ERROR) +kafka'
