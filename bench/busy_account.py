"""What a busy account's month costs a consumer: its invoice, rewritten with every batch.

    .venv/bin/python -m bench.busy_account [--usage 20000] [--slices 5]

One PostgreSQL database gets one account's month of `--usage` usage records
(`bench.traffic`), stored by a consumer in batches of 500 with its views alongside, as a
Kafka consumer stores them. The month is taken in `--slices` equal slices; after each it
prints the consumer's time per record in that slice, the largest view document stored, the
bytes of view documents a batch wrote on average (each batch writes every document it
changed whole, and PostgreSQL stores and logs each), and how long support waits for the
month's invoice, as a table (`ledger invoice --period`) and with every charge id on it
(`ledger --json invoice --period`), in the process: the median of `READS`.

A figure that grows from slice to slice is a cost that grows with the month.
"""

import argparse
import json
import statistics
import time
from typing import Any

import orjson
import psycopg

from bench.months import BATCH, store_alongside
from bench.run import say
from bench.scratch import ADMIN_URL, scratch_database
from bench.traffic import FIRST_PERIOD, account_id, generate
from ledger.application import LedgerApp
from ledger.runtime import tune_for_long_runs
from ledger.store import parse_store_url
from projections.invoices import read_invoices
from projections.runner import ViewsAlongside
from projections.store import VIEW_TABLE
from projections.store_postgres import PostgresViewStore


class CountedAlongside(ViewsAlongside):
    """Views alongside, counting the bytes of the documents each committed batch wrote, and
    the time the counting took (it encodes them again), which is not the consumer's."""

    def __init__(self, app: LedgerApp, views: PostgresViewStore) -> None:
        super().__init__(app, views)
        self.written = 0
        self.counting_seconds = 0.0

    def committed(self) -> None:
        assert self._changes is not None
        started = time.perf_counter()
        self.written += sum(len(orjson.dumps(doc)) for doc in self._changes.changed.values() if doc)
        self.counting_seconds += time.perf_counter() - started
        super().committed()


READS = 11  # of the month's invoice after each slice


def invoice_read_ms(views: PostgresViewStore, charge_ids: bool) -> float:
    """Milliseconds to read the busy account's invoice of the month, with its charges' ids or
    as its table shows it: the median of READS."""
    timings = []
    for _ in range(READS):
        started = time.perf_counter()
        assert len(read_invoices(views, account_id(0), FIRST_PERIOD, charge_ids=charge_ids)) == 1
        timings.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(timings), 2)


def largest_document(db: psycopg.Connection[Any]) -> int:
    row = db.execute(f"SELECT coalesce(max(octet_length(doc::text)), 0) FROM {VIEW_TABLE}")
    found = row.fetchone()
    assert found is not None
    return int(found[0])


def run(url: str, usage: int, slices: int) -> list[dict[str, Any]]:
    lines = list(generate(1, usage))
    app = LedgerApp(parse_store_url(url))
    rows = []
    with PostgresViewStore(url) as views, psycopg.connect(url, autocommit=True) as db:
        alongside = CountedAlongside(app, views)
        per_slice = -(-len(lines) // slices)
        for first in range(0, len(lines), per_slice):
            taken = lines[first : first + per_slice]
            written_before, counting_before = alongside.written, alongside.counting_seconds
            started = time.perf_counter()
            store_alongside(app, alongside, taken, first)
            counting = alongside.counting_seconds - counting_before
            elapsed = time.perf_counter() - started - counting
            batches = -(-len(taken) // BATCH)
            rows.append(
                {
                    "records": first + len(taken),
                    "us_per_record": round(elapsed * 1e6 / len(taken), 1),
                    "largest_document_bytes": largest_document(db),
                    "written_kib_per_batch": round(
                        (alongside.written - written_before) / 1024 / batches, 1
                    ),
                    "invoice_table_ms": invoice_read_ms(views, charge_ids=False),
                    "invoice_read_ms": invoice_read_ms(views, charge_ids=True),
                }
            )
            say(f"{first + len(taken):,} records stored")
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.busy_account",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--usage", type=int, default=20_000, help="usage records in the month")
    parser.add_argument("--slices", type=int, default=5, help="slices of the month measured")
    parser.add_argument("--admin-url", default=ADMIN_URL, help="a PostgreSQL role with CREATEDB")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    tune_for_long_runs()  # as the `ledger` command does
    with scratch_database(args.admin_url, prefix="bench_busy") as url:
        rows = run(url, args.usage, args.slices)
    if args.json:
        print(json.dumps(rows, sort_keys=True))
        return
    print(
        f"{'records':>9} {'us/record':>10} {'largest doc B':>14} {'written KiB/batch':>18}"
        f" {'table read ms':>14} {'with ids read ms':>17}"
    )
    for row in rows:
        print(
            f"{row['records']:>9,} {row['us_per_record']:>10,.1f}"
            f" {row['largest_document_bytes']:>14,} {row['written_kib_per_batch']:>18,.1f}"
            f" {row['invoice_table_ms']:>14,.2f} {row['invoice_read_ms']:>17,.2f}"
        )


if __name__ == "__main__":
    main()
