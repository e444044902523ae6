"""Replay and audit rates of a stored log, without Kafka: for comparing code on the same log.

    .venv/bin/python -m bench.replay --store postgresql://ledger:ledger@127.0.0.1:55432/ledger \
        [--repeat 3]

Prints, for the whole log of that store, how many events per second (wall clock and the
process's own CPU) each step takes, best of `--repeat` runs:

- read: the log read back into domain events;
- fold: every view folded from events already in memory;
- replay: read and fold, as a rebuild does (without writing the views);
- audit: one read feeding the chains, the intake tally and the views, as `ledger audit` does;
- audit_in_parts: the same, the log read in `--processes` parts side by side, one process
  each (its CPU rate counts every process's CPU);
- rebuild_in_place: the views emptied and replayed page by page, as the embedded stores'
  `ledger rebuild` (and PostgreSQL's before round 17);
- rebuild: the views staged and swapped in, one process, as PostgreSQL's `ledger rebuild` of
  a log under 50,000 events;
- rebuild_in_parts: the same, the log folded in `--processes` parts side by side.

The rebuilds write their views to a scratch database (`--admin-url`); the store is only read.
Run the code before and after a change alternately, from a worktree with PYTHONPATH set to
it, and compare the CPU rates: they move far less than wall-clock rates on a shared machine.
"""

import argparse
import json
import resource
import time
from collections.abc import Callable
from typing import Any

from bench.scratch import ADMIN_URL, scratch_database
from ledger.application import LedgerApp
from ledger.runtime import tune_for_long_runs
from ledger.store import parse_store_url
from projections.log_audit import audit_log
from projections.log_rebuild import rebuild_in_parts
from projections.runner import fold, rebuild
from projections.store_postgres import PostgresViewStore

REBUILD_STEPS = ("rebuild_in_place", "rebuild", "rebuild_in_parts")  # they write views
STEPS = ("read", "fold", "replay", "audit", "audit_in_parts", *REBUILD_STEPS)
AUDIT_PROCESSES = 2  # the cores of the machines the figures in docs/PERFORMANCE.md come from


def audit_whole_log(app: LedgerApp, processes: int = 1) -> None:
    """The whole ledger's audit as `ledger audit` makes it, but for the live views' read."""
    through = app.recorder.max_notification_id() or 0
    found = audit_log(app, through, processes)
    found.intake.result(app.process_recorder.max_tracking_id)
    app.applied_id_findings(found.applied_ids)


def _rebuilt(app: LedgerApp, views_url: str | None, parts: int | None) -> int:
    """The log's views rebuilt into that database's: in place (None), or staged in parts."""
    assert views_url is not None, "a rebuild needs a database for its views"
    with PostgresViewStore(views_url) as views:
        if parts is None:
            return rebuild(app, views)
        return rebuild_in_parts(app, views, parts)


def timed(count: int, step: Callable[[], object], repeat: int) -> dict[str, float]:
    """Events per second of the best of `repeat` runs, by wall clock and by CPU: this
    process's and that of the processes it started and waited for."""
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), _cpu_seconds()
        step()
        walls.append(time.perf_counter() - wall)
        cpus.append(_cpu_seconds() - cpu)
    return {"per_s": rate(count, min(walls)), "per_cpu_s": rate(count, min(cpus))}


def _cpu_seconds() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def measure(
    app: LedgerApp,
    repeat: int = 1,
    steps: tuple[str, ...] = ("replay", "audit", "audit_in_parts"),
    processes: int = AUDIT_PROCESSES,
    views_url: str | None = None,
) -> dict[str, Any]:
    # Folding from memory needs the events held; otherwise one counting read is enough.
    events = list(app.stored_events()) if "fold" in steps else []
    count = len(events) if "fold" in steps else sum(1 for _ in app.stored_events())
    runs: dict[str, Callable[[], object]] = {
        "read": lambda: sum(1 for _ in app.stored_events()),
        "fold": lambda: fold(events),
        "replay": lambda: fold(app.stored_events()),
        "audit": lambda: audit_whole_log(app),
        "audit_in_parts": lambda: audit_whole_log(app, processes),
        "rebuild_in_place": lambda: _rebuilt(app, views_url, None),
        "rebuild": lambda: _rebuilt(app, views_url, 1),
        "rebuild_in_parts": lambda: _rebuilt(app, views_url, processes),
    }
    figures: dict[str, Any] = {"events": count, "processes": processes}
    for step in steps:
        figures[step] = timed(count, runs[step], repeat)
    return figures


def rate(count: int, seconds: float) -> float:
    return round(count / max(seconds, 1e-9), 1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.replay", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--store", required=True, help="the ledger's store URL")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each step; the best counts")
    parser.add_argument(
        "--processes",
        type=int,
        default=AUDIT_PROCESSES,
        help="processes of the audit_in_parts step",
    )
    parser.add_argument(
        "--steps", default=",".join(STEPS), help="the steps to time, by name, comma-separated"
    )
    parser.add_argument(
        "--admin-url", default=ADMIN_URL, help="a PostgreSQL role with CREATEDB, for the rebuilds"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    tune_for_long_runs()  # as the `ledger` command does
    steps = tuple(step.strip() for step in args.steps.split(",") if step.strip())
    unknown = sorted(set(steps) - set(STEPS))
    if unknown:
        parser.error(f"unknown steps {', '.join(unknown)}; steps are {', '.join(STEPS)}")
    app = LedgerApp(parse_store_url(args.store))
    if any(step in REBUILD_STEPS for step in steps):
        with scratch_database(args.admin_url, prefix="bench_rebuild") as views_url:
            figures = measure(app, args.repeat, steps, args.processes, views_url)
    else:  # only reads: no database to make, nor a role that may make one
        figures = measure(app, args.repeat, steps, args.processes)
    if args.json:
        print(json.dumps(figures, sort_keys=True))
        return
    print(f"{figures['events']:,} stored events, best of {args.repeat}")
    for step in steps:
        got = figures[step]
        name = step.replace("_", " ").replace("in parts", f"in {args.processes} processes")
        print(f"{name:24s} {got['per_s']:>10,.0f} /s   {got['per_cpu_s']:>10,.0f} per CPU second")


if __name__ == "__main__":
    main()
