"""Instructions per event, counted by valgrind: a CPU cost the shared machine's noise cannot move.

    .venv/bin/python -m bench.instructions --store postgresql://ledger:ledger@127.0.0.1:55432/ledger
    .venv/bin/python -m bench.instructions --steps consume

On these shared 2-core machines the same code's CPU seconds vary by a third from one run to
the next: another machine takes the cores ("st" in top). Valgrind counts the instructions a
process executes instead, the same for the same code and input whatever else the machine does.
So a change is measured by running each step on the code before and after it (from a worktree,
as with bench.replay): a difference of 1% is real. The counted processes run the code of the
tree this file is in; to count code older than it, copy it into that tree's bench/.

Each step runs in two processes under valgrind (cachegrind, no cache simulation), doing its
work once and three times; the difference, divided by the events of two rounds of work, leaves
out the start, the imports and the loading:

- fold: the first `--events` events of the store's log folded into every view;
- read: those events read back from the store into domain events;
- audit: those events audited as `ledger audit` audits them once read (chains, intake, views
  and snapshots: `projections.log_audit.audit_events`);
- consume: `bench.traffic` records (`--accounts`, `--usage`) stored in batches of 1,000 in a
  scratch PostgreSQL database with their views alongside, as the Kafka consumer stores them;
  a round is `--batches` batches, after as many batches taken first.

Python's hash seed is fixed (PYTHONHASHSEED=0) so that sets and dicts iterate in one order.
Instructions are not seconds: a change that waits less on the database, or that moves work
to the database server, shows in bench.run's figures and not here. Nor does valgrind pass on
the CPU's SHA extensions: under it OpenSSL hashes in software, so the SHA-256 of each chain
link (consume, audit) counts several times what it costs natively (round 20).
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from itertools import islice
from pathlib import Path
from typing import Any

from bench.months import store_alongside
from bench.scratch import ADMIN_URL, scratch_database
from bench.traffic import generate
from ledger.application import LedgerApp
from ledger.runtime import tune_for_long_runs
from ledger.store import parse_store_url
from projections.log_audit import audit_events
from projections.runner import ViewsAlongside, fold
from projections.store_postgres import PostgresViewStore

STEPS = ("fold", "read", "audit", "consume")
BATCH = 1000
ROUNDS = (1, 3)  # the work of each step done once, then three times: two rounds' difference
PROJECT = Path(__file__).resolve().parents[1]
_INSTRUCTIONS = re.compile(r"^==\d+== I\s+refs:\s+([\d,]+)\s*$", re.MULTILINE)
_VALGRIND = re.compile(r"^==\d+==")  # what valgrind writes, beside the process's own stderr


class CountFailed(Exception):
    """Valgrind is missing, or the counted process failed."""


def instructions_of(valgrind_output: str) -> int:
    """The instructions a process executed, from cachegrind's summary on its stderr."""
    found = _INSTRUCTIONS.search(valgrind_output)
    if found is None:
        raise CountFailed("valgrind printed no instruction count")
    return int(found.group(1).replace(",", ""))


def count(step: str, rounds: int, options: list[str]) -> tuple[int, int]:
    """Instructions of one process doing `rounds` rounds of the step's work, and the events
    of one round as that process counted them."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise CountFailed("valgrind is not installed (Debian: apt-get install valgrind)")
    command = [
        valgrind,
        "--tool=cachegrind",
        "--cache-sim=no",
        "--cachegrind-out-file=/dev/null",
        sys.executable,
        "-m",
        "bench.instructions",
        "--work",
        step,
        str(rounds),
        *options,
    ]
    path = os.pathsep.join(p for p in (str(PROJECT), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": path}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        said = [line for line in done.stderr.splitlines() if line and not _VALGRIND.match(line)]
        last = (said or ["no output"])[-1]
        raise CountFailed(f"{step}: the counted process failed ({done.returncode}): {last}")
    events = json.loads(done.stdout.strip().splitlines()[-1])["events"]
    return instructions_of(done.stderr), int(events)


def per_event(step: str, options: list[str]) -> dict[str, int]:
    """The step's instructions per event, from the difference of its two processes."""
    (fewer, events), (more, same) = (count(step, rounds, options) for rounds in ROUNDS)
    assert events == same > 0, (step, events, same)
    rounds = ROUNDS[1] - ROUNDS[0]
    return {"per_event": round((more - fewer) / (rounds * events)), "events": events}


def work(step: str, rounds: int, args: argparse.Namespace) -> int:
    """Run the step's work `rounds` times in this process; the events of one round."""
    tune_for_long_runs()  # as the `ledger` command does: the collector as in production
    if step == "consume":
        return _consume(rounds, args)
    app = LedgerApp(parse_store_url(args.store))
    events = list(islice(app.stored_events(), args.events))
    if not events:
        raise SystemExit(f"{step}: the store holds no events (store some with `ledger ingest`)")
    for _ in range(rounds):
        if step == "fold":
            fold(events)
        elif step == "audit":
            audit_events(app, enumerate(events, 1))
        else:
            sum(1 for _ in islice(app.stored_events(), args.events))
    return len(events)


def _consume(rounds: int, args: argparse.Namespace) -> int:
    lines = list(generate(args.accounts, args.usage))
    needed = BATCH * args.batches * (1 + ROUNDS[-1])  # every batch counted is a full one
    if len(lines) < needed:
        raise SystemExit(
            f"consume needs {needed:,} records ({args.batches} batches of {BATCH:,} first, "
            f"then {ROUNDS[-1]} rounds of as many); the traffic made {len(lines):,}: raise --usage"
        )
    taken = args.batches * (1 + rounds)
    with scratch_database(args.admin_url, prefix="bench_instructions") as url:
        app = LedgerApp(parse_store_url(url))
        with PostgresViewStore(url) as views:
            store_alongside(app, ViewsAlongside(app, views), lines[: BATCH * taken], 0, BATCH)
    batches_a_round: int = args.batches
    return BATCH * batches_a_round


def _step_options(step: str, args: argparse.Namespace) -> list[str]:
    if step == "consume":
        return [
            f"--accounts={args.accounts}",
            f"--usage={args.usage}",
            f"--batches={args.batches}",
            f"--admin-url={args.admin_url}",
        ]
    return [f"--store={args.store}", f"--events={args.events}"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.instructions",
        description=__doc__.split("\n\n")[0],
        epilog="What the figures mean: docs/PERFORMANCE.md (round 13).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--store", help="the store whose log fold, read and audit take (a URL)")
    parser.add_argument(
        "--events", type=int, default=20_000, help="events fold, read and audit take"
    )
    parser.add_argument(
        "--steps",
        default="fold,read",
        help="steps to count: fold (the views, from the store's log), read (the store's log), "
        "audit (the store's log, once read), "
        "consume (bench.traffic records, into a scratch PostgreSQL database)",
    )
    parser.add_argument("--accounts", type=int, default=1000, help="accounts consume makes")
    parser.add_argument("--usage", type=int, default=40_000, help="usage records consume makes")
    parser.add_argument("--batches", type=int, default=4, help="batches of 1,000 in a round")
    parser.add_argument("--admin-url", default=ADMIN_URL, help="a PostgreSQL role with CREATEDB")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--work", nargs=2, metavar=("STEP", "ROUNDS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.work is not None:  # the counted process
        step, rounds = args.work
        print(json.dumps({"events": work(step, int(rounds), args)}))
        return
    steps = [step.strip() for step in args.steps.split(",") if step.strip()]
    unknown = sorted(set(steps) - set(STEPS))
    if unknown:
        parser.error(f"unknown steps {', '.join(unknown)}; steps are {', '.join(STEPS)}")
    if args.store is None and {"fold", "read", "audit"} & set(steps):
        parser.error("fold, read and audit count a stored log: give its --store")
    figures: dict[str, Any] = {}
    try:
        for step in steps:
            print(f"counting {step} under valgrind (two processes) ...", file=sys.stderr)
            figures[step] = per_event(step, _step_options(step, args))
    except CountFailed as failed:
        raise SystemExit(f"bench.instructions: {failed}") from None
    if args.json:
        print(json.dumps(figures, sort_keys=True))
        return
    print("instructions per event (valgrind; PYTHONHASHSEED=0)")
    for step, got in figures.items():
        print(f"{step:8s} {got['per_event']:>10,}   over {got['events']:,} events a round")


if __name__ == "__main__":
    main()
