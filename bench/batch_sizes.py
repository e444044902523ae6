"""What a batch's size saves: the CPU and view bytes an event costs, by records a batch.

    .venv/bin/python -m bench.batch_sizes [--accounts 1000] [--records 24000] \
        [--sizes 100,250,1000,4000] [--repeat 2] [--uuid-ids]

A Kafka consumer stores each partition's records of a poll as one batch, with the view
documents the batch changed written once each, whole, however many of its events changed
them. For each size of `--sizes`, a fresh PostgreSQL database gets the same `bench.traffic`
records (`--accounts`, `--records`): the first `--warm` stored in batches of 1,000, the rest
in batches of that size with the views alongside. Printed per size, for the rest: the
microseconds of CPU an event cost the PostgreSQL server and the storing process (from /proc
and the process's own clock), and the bytes of view documents written per event. The sizes
run in turn, `--repeat` times over, so that the machine's noise falls on each alike.
"""

import argparse
import json
import time
from typing import Any

from bench.busy_account import CountedAlongside
from bench.cpu import SERVICES, cpu_seconds
from bench.months import store_alongside
from bench.run import say
from bench.scratch import ADMIN_URL, scratch_database
from bench.traffic import generate
from ledger.application import LedgerApp
from ledger.runtime import tune_for_long_runs
from ledger.store import parse_store_url
from projections.store_postgres import PostgresViewStore

WARM_BATCH = 1000


def measure(admin_url: str, lines: list[bytes], warm: int, size: int) -> dict[str, Any]:
    """One size's run in a fresh database: the figures per event of the records after `warm`."""
    measured = len(lines) - warm
    with scratch_database(admin_url, prefix="bench_batches") as url:
        app = LedgerApp(parse_store_url(url))
        with PostgresViewStore(url) as views:
            alongside = CountedAlongside(app, views)
            store_alongside(app, alongside, lines[:warm], 0, WARM_BATCH)
            written, counting = alongside.written, alongside.counting_seconds
            server = cpu_seconds(SERVICES["postgresql"])
            own = time.process_time()
            store_alongside(app, alongside, lines[warm:], warm, size)
            # Less the bench's own counting of the bytes, which encodes the documents again.
            own = time.process_time() - own - (alongside.counting_seconds - counting)
            after = cpu_seconds(SERVICES["postgresql"])
            written = alongside.written - written
    return {
        "batch": size,
        # None without /proc: the server's CPU is not known there.
        "postgresql_us": None
        if server is None or after is None
        else round((after - server) * 1e6 / measured, 1),
        "process_us": round(own * 1e6 / measured, 1),
        "view_bytes": round(written / measured),
    }


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    lines = list(generate(args.accounts, args.records, uuid_ids=args.uuid_ids))[: args.records]
    if len(lines) <= args.warm:
        raise SystemExit(f"--records {args.records} leaves nothing after --warm {args.warm}")
    sizes = [int(size) for size in args.sizes.split(",")]
    rows = []
    for round_number in range(1, args.repeat + 1):
        for size in sizes:
            say(f"bench.batch_sizes: round {round_number}, batches of {size:,}")
            rows.append({"round": round_number, **measure(args.admin_url, lines, args.warm, size)})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.batch_sizes",
        description=__doc__.split("\n\n")[0],
        epilog="Figures and what they mean: docs/PERFORMANCE.md (session 40).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--accounts", type=int, default=1000, help="accounts in the traffic")
    parser.add_argument("--records", type=int, default=24_000, help="records stored in all")
    parser.add_argument("--warm", type=int, default=4000, help="records stored first, unmeasured")
    parser.add_argument("--sizes", default="100,250,1000,4000", help="records a batch, each run")
    parser.add_argument("--repeat", type=int, default=2, help="runs of every size, in turn")
    parser.add_argument(
        "--uuid-ids", action="store_true", help="event ids as UUIDs, as an upstream system's"
    )
    parser.add_argument("--admin-url", default=ADMIN_URL, help="a PostgreSQL role with CREATEDB")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    tune_for_long_runs()  # as the `ledger` command does
    rows = run(args)
    if args.json:
        print(json.dumps(rows, sort_keys=True))
        return
    print(f"{'round':>5} {'batch':>6} {'PostgreSQL us':>14} {'process us':>11} {'view B':>7}")
    for row in rows:
        server = "-" if row["postgresql_us"] is None else f"{row['postgresql_us']:.1f}"
        print(
            f"{row['round']:>5} {row['batch']:>6,} {server:>14} {row['process_us']:>11.1f}"
            f" {row['view_bytes']:>7,}"
        )
    print("(per event stored after the first --warm records)")


if __name__ == "__main__":
    main()
