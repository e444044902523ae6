"""What a long history costs a consumer: loading an account, loading a source's intake, memory.

    .venv/bin/python -m bench.history [--events 2000,8000,32000] [--batch 10]

For each size, a fresh embedded store gets one account with that many usage events (from
`bench.traffic`), ingested in batches of `--batch` records, so the source's intake holds one
batch per `--batch` records. Then a process that has never seen them (a consumer after a
restart, a rebalance or a failed batch) loads the account and the intake, and support asks
for the account's latest 20 history entries (`ledger history --limit 20`). It prints, per
size: the time of each, per event of the account's history for its load, and the memory the
loaded account holds.
"""

import argparse
import json
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from bench.traffic import generate
from consumers.pipeline import RawRecord, process_batch
from ledger.application import LedgerApp
from ledger.history import account_history
from ledger.runtime import tune_for_long_runs
from ledger.store import parse_store_url

ACCOUNT = "ACC-000000"
SOURCE = "bench-history"


def build(url: str, events: int, batch: int) -> None:
    """One account's month of `events` usage events, stored `batch` records at a time."""
    app = LedgerApp(parse_store_url(url))
    records = [RawRecord(n, line) for n, line in enumerate(generate(1, events))]
    for start in range(0, len(records), batch):
        process_batch(app, SOURCE, records[start : start + batch], lambda _: None)


def measure(url: str) -> dict[str, Any]:
    """Load times of the account and the intake, and the account's memory, in a new process
    state (nothing cached)."""
    app = LedgerApp(parse_store_url(url))
    started = time.perf_counter()
    account = app.account(ACCOUNT)
    account_s = time.perf_counter() - started
    assert account is not None
    # Memory in a load of its own: tracing every allocation slows the load down.
    again = LedgerApp(parse_store_url(url))
    tracemalloc.start()
    held_account = again.account(ACCOUNT)
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert held_account is not None and held_account.version == account.version
    started = time.perf_counter()
    intake = app.intake(SOURCE)
    intake_s = time.perf_counter() - started
    assert intake is not None
    batches = intake.version - 1  # its start, then one event a batch
    support = LedgerApp(parse_store_url(url))
    started = time.perf_counter()
    entries = account_history(support, ACCOUNT, latest=20)
    history_s = time.perf_counter() - started
    assert entries is not None and len(entries) == 20
    return {
        "account_events": account.version,
        "account_load_ms": round(account_s * 1000, 1),
        "account_load_us_per_event": round(account_s * 1e6 / account.version, 1),
        "account_held_kib": round(held / 1024, 1),
        "account_held_bytes_per_event": round(held / account.version),
        "intake_batches": batches,
        "intake_load_ms": round(intake_s * 1000, 1),
        "history_20_ms": round(history_s * 1000, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.history", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--events",
        default="2000,8000,32000",
        help="comma-separated sizes of the account's history (usage events)",
    )
    parser.add_argument("--batch", type=int, default=10, help="records per ingested batch")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    tune_for_long_runs()  # as the `ledger` command does
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-history-") as scratch:
        for size in (int(n) for n in args.events.split(",")):
            url = f"sqlite:///{Path(scratch) / f'history-{size}.db'}"
            build(url, size, args.batch)
            rows.append(measure(url))
    if args.json:
        print(json.dumps(rows, sort_keys=True))
        return
    print(
        f"{'account events':>14} {'load ms':>9} {'us/event':>9} {'held KiB':>9} {'B/event':>8}"
        f" {'intake batches':>15} {'load ms':>8} {'history ms':>11}"
    )
    for row in rows:
        print(
            f"{row['account_events']:>14,} {row['account_load_ms']:>9,.1f}"
            f" {row['account_load_us_per_event']:>9,.1f} {row['account_held_kib']:>9,.1f}"
            f" {row['account_held_bytes_per_event']:>8,} {row['intake_batches']:>15,}"
            f" {row['intake_load_ms']:>8,.1f} {row['history_20_ms']:>11,.1f}"
        )


if __name__ == "__main__":
    main()
