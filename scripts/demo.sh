#!/usr/bin/env bash
# The main job on the embedded default: install, ingest the shipped sample month into SQLite,
# and print what support would see. Safe to run again: it starts from a fresh demo store.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install.sh
export LEDGER_STORE="sqlite:///demo.db"
rm -f demo.db demo.db-wal demo.db-shm examples/sample-month.jsonl.deadletter.jsonl
ledger() { .venv/bin/ledger "$@"; }

echo "== ingest the sample month (November 2026, six accounts) into demo.db"
ledger ingest examples/sample-month.jsonl
echo
echo "== what support sees: balances"
for account in ACC-1001 ACC-1002 ACC-1003 ACC-2001 ACC-2002 ACC-2003; do
  ledger balance "$account"
done
echo
echo "== the same for machines (--json)"
ledger --json balance ACC-1001
echo
echo "== records the ledger refused, with their reasons (examples/sample-month.jsonl.deadletter.jsonl)"
cut -c1-160 examples/sample-month.jsonl.deadletter.jsonl
