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
echo "== plan minutes (November) and an authorization"
ledger minutes ACC-1001 --period 2026-11
ledger authorize ACC-1001 --msisdn +14155550101 --to +14165550199 --at 2026-11-20T12:00:00Z \
  || echo "(exit status $?: refused)"
# Exit status 3 means refused (V9); the demo goes on either way.
ledger authorize ACC-1002 --msisdn +14165550201 --to +12125550100 --at 2026-12-02T12:00:00Z \
  || echo "(exit status $?: refused)"
echo
echo "== data packages and fair use"
ledger data ACC-1002 --at 2026-11-30T12:00:00Z
ledger throttle ACC-2002 --at 2026-11-30T12:00:00Z
echo
echo "== the last entries of an account's history"
ledger history ACC-1001 --limit 6
echo
echo "== November's postpaid invoice and prepaid statement (closed by the December bill run)"
ledger invoice ACC-2001 --period 2026-11
ledger invoice ACC-1001 --period 2026-11
echo
echo "== finance: explain a charge, and prove the ledger adds up"
ledger explain ACC-2001 sample-00019:fee
ledger audit
echo
echo "== the same for machines (--json)"
ledger --json balance ACC-1001
echo
echo "== records the ledger refused, with their reasons (examples/sample-month.jsonl.deadletter.jsonl)"
cut -c1-160 examples/sample-month.jsonl.deadletter.jsonl
