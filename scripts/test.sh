#!/usr/bin/env bash
# The whole test suite on a fresh machine: install, start the real Kafka and PostgreSQL
# servers on 127.0.0.1, lint and type-check, then run pytest (extra arguments go to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install.sh
bash scripts/postgres.sh start
bash scripts/kafka.sh start

echo "== ruff"
.venv/bin/ruff check .
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
.venv/bin/pytest "$@"
