"""What an account's past months cost a consumer: the view documents it reads and keeps.

    .venv/bin/python -m bench.months [--accounts 500] [--usage 10000] [--months 1,3,6,12]

One PostgreSQL database gets `--accounts` accounts' months of traffic (`bench.traffic`,
`--usage` usage records and a bill run a month), stored by a consumer with its views
alongside. After each month count of `--months`, it measures:

- per account, the view documents stored, and those a consumer reads when it loads an
  account's views (its current ones) against every document of the account (what was read
  before documents were settled), in the same run: how many, their bytes, the time to read
  and parse them for all accounts in pages of 500;
- the time a process that never saw an account takes to load it (its snapshot and the
  events after it), one account at a time and a batch's worth (500) at a time;
- a consumer that never saw the accounts (a restart) taking the next `--sample` records in
  batches of 500: its rate, and the documents it keeps afterwards (in all).
"""

import argparse
import json
import time
from typing import Any

import orjson
import psycopg

from bench.run import say
from bench.scratch import ADMIN_URL, scratch_database
from bench.traffic import account_id, generate
from consumers.pipeline import RawRecord, process_batch
from ledger.application import LedgerApp
from ledger.runtime import tune_for_long_runs
from ledger.store import parse_store_url
from projections.runner import ViewsAlongside
from projections.store import VIEW_TABLE
from projections.store_postgres import PostgresViewStore

BATCH = 500
ACCOUNT_PAGE = 500
EVERY_DOCUMENT_INDEX = f"{VIEW_TABLE}_bench_every_account"


def store_alongside(
    app: LedgerApp, alongside: ViewsAlongside, lines: list[bytes], start: int, batch: int = BATCH
) -> None:
    """Store these records, the first at source position `start`, in batches of `batch` with
    their views alongside, as a Kafka consumer stores them."""
    for first in range(0, len(lines), batch):
        taken = lines[first : first + batch]
        records = [RawRecord(start + first + i, line) for i, line in enumerate(taken)]
        process_batch(app, "bench", records, lambda letters: None, None, alongside)


def consume(url: str, lines: list[bytes], start: int) -> tuple[float, int]:
    """A fresh consumer storing these records with its views: seconds, documents it keeps."""
    app = LedgerApp(parse_store_url(url))
    with PostgresViewStore(url) as views:
        alongside = ViewsAlongside(app, views)
        started = time.perf_counter()
        store_alongside(app, alongside, lines, start)
        return time.perf_counter() - started, len(alongside.known.docs)


def load_times(url: str, accounts: list[str]) -> tuple[float, float]:
    """Seconds a process that never saw them takes to load the accounts (snapshot and events
    after it), as a restarted consumer does first: one by one, as its batches did before
    round 11, and a batch's worth at a time, as they do now (`LedgerApp.load_accounts`)."""
    one_by_one = LedgerApp(parse_store_url(url))
    started = time.perf_counter()
    for account in accounts:
        assert one_by_one.account(account) is not None
    one_by_one_s = time.perf_counter() - started
    together = LedgerApp(parse_store_url(url))
    started = time.perf_counter()
    for first in range(0, len(accounts), BATCH):
        assert together.load_accounts(accounts[first : first + BATCH]) == set()
    return one_by_one_s, time.perf_counter() - started


def read_documents(url: str, accounts: list[str], every: bool) -> tuple[float, int, int]:
    """Seconds, documents and bytes of reading and parsing the accounts' views a page of
    accounts at a time: their current documents (as `documents_of` does), or every one."""
    condition = "" if every else " AND NOT settled"
    documents = size = 0
    with psycopg.connect(url) as db:
        started = time.perf_counter()
        for first in range(0, len(accounts), ACCOUNT_PAGE):
            rows = db.execute(
                f"SELECT view, key, doc FROM {VIEW_TABLE} "
                f"WHERE split_part(key, '|', 1) = ANY(%s){condition}",
                (accounts[first : first + ACCOUNT_PAGE],),
            ).fetchall()
            parsed = {(view, key): orjson.loads(doc) for view, key, doc in rows}  # as a consumer
            documents += len(parsed)
            size += sum(len(doc) for _, _, doc in rows)
        return time.perf_counter() - started, documents, size


def measure(
    url: str, accounts: list[str], months: int, sample: list[bytes], start: int
) -> dict[str, Any]:
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(f"VACUUM ANALYZE {VIEW_TABLE}")
        row = db.execute(f"SELECT count(*), sum(length(doc)) FROM {VIEW_TABLE}").fetchone()
        assert row is not None
    every_s, every_docs, every_bytes = read_documents(url, accounts, every=True)
    current_s, current_docs, current_bytes = read_documents(url, accounts, every=False)
    load_s, together_s = load_times(url, accounts)
    sample_s, kept = consume(url, sample, start)
    per_account = len(accounts)
    return {
        "months": months,
        "stored_docs_per_account": round(row[0] / per_account, 1),
        "stored_kb_per_account": round(row[1] / per_account / 1024, 1),
        "every_docs_per_account": round(every_docs / per_account, 1),
        "every_kb_per_account": round(every_bytes / per_account / 1024, 1),
        "every_read_us_per_account": round(every_s * 1e6 / per_account),
        "current_docs_per_account": round(current_docs / per_account, 1),
        "current_kb_per_account": round(current_bytes / per_account / 1024, 1),
        "current_read_us_per_account": round(current_s * 1e6 / per_account),
        "account_load_us": round(load_s * 1e6 / per_account),
        "account_load_together_us": round(together_s * 1e6 / per_account),
        "restarted_consumer_per_s": round(len(sample) / sample_s),
        "restarted_consumer_kept_docs": kept,
    }


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    checkpoints = sorted(int(n) for n in args.months.split(","))
    lines = list(generate(args.accounts, args.usage, months=checkpoints[-1] + 1))
    month_length = args.usage + args.accounts  # usage and one bill run per account
    setup = len(lines) - (checkpoints[-1] + 1) * month_length
    accounts = [account_id(a) for a in range(args.accounts)]
    rows = []
    with scratch_database(args.admin_url, prefix="bench_months") as url:
        with PostgresViewStore(url), psycopg.connect(url, autocommit=True) as db:
            # What every document's read used before it could be settled: an index of them all.
            db.execute(
                f"CREATE INDEX {EVERY_DOCUMENT_INDEX} ON {VIEW_TABLE} (split_part(key, '|', 1))"
            )
        stored = 0
        for months in checkpoints:
            end = setup + months * month_length
            say(f"bench.months: storing up to month {months} ({end - stored:,} records)")
            consume(url, lines[stored:end], stored)
            sample = lines[end : end + args.sample]
            say(f"bench.months: measuring after {months} months")
            rows.append(measure(url, accounts, months, sample, end))
            stored = end + len(sample)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.months",
        description=__doc__.split("\n\n")[0],
        epilog="Figures and what they mean: docs/PERFORMANCE.md (rounds 10 and 11).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--accounts", type=int, default=500, help="accounts in the traffic")
    parser.add_argument("--usage", type=int, default=10_000, help="usage records a month")
    parser.add_argument("--months", default="1,3,6,12", help="month counts to measure after")
    parser.add_argument(
        "--sample", type=int, default=5_000, help="records a restarted consumer takes"
    )
    parser.add_argument("--admin-url", default=ADMIN_URL, help="a PostgreSQL role with CREATEDB")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    tune_for_long_runs()  # as the `ledger` command does
    rows = run(args)
    if args.json:
        print(json.dumps(rows, sort_keys=True))
        return
    print(
        f"{'months':>6} {'stored docs':>11} {'KB':>6} | {'read, every docs':>16} {'KB':>6}"
        f" {'us':>5} | {'read, current docs':>18} {'KB':>5} {'us':>5} |"
        f" {'load us':>7} {'together':>8} |"
        f" {'restarted /s':>12} {'kept docs':>9}"
    )
    for row in rows:
        print(
            f"{row['months']:>6} {row['stored_docs_per_account']:>11} "
            f"{row['stored_kb_per_account']:>6} | {row['every_docs_per_account']:>16} "
            f"{row['every_kb_per_account']:>6} {row['every_read_us_per_account']:>5} | "
            f"{row['current_docs_per_account']:>18} {row['current_kb_per_account']:>5} "
            f"{row['current_read_us_per_account']:>5} | {row['account_load_us']:>7,}"
            f" {row['account_load_together_us']:>8,} |"
            f" {row['restarted_consumer_per_s']:>12,}"
            f" {row['restarted_consumer_kept_docs']:>9,}"
        )
    print("(per account, but the restarted consumer's rate and the documents it keeps in all)")


if __name__ == "__main__":
    main()
