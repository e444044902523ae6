"""Replay and audit rates of a stored log, without Kafka: for comparing code on the same log.

    .venv/bin/python -m bench.replay --store postgresql://ledger:ledger@127.0.0.1:55432/ledger \
        [--repeat 3]

Prints, for the whole log of that store, how many events per second (wall clock and the
process's own CPU) each step takes, best of `--repeat` runs:

- read: the log read back into domain events;
- fold: every view folded from events already in memory;
- replay: read and fold, as `ledger rebuild` does;
- audit: one read feeding the chains, the intake tally and the views, as `ledger audit` does.

Nothing is written. Run the code before and after a change alternately, from a worktree with
PYTHONPATH set to it, and compare the CPU rates: they move far less than wall-clock rates on a
shared machine.
"""

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

from ledger.application import LedgerApp
from ledger.audit import ChainAudit, IntakeTally, streams_named
from ledger.runtime import tune_for_long_runs
from ledger.store import parse_store_url
from projections.runner import Fold, fold, view_documents


def audit_log(app: LedgerApp) -> None:
    """The whole ledger's audit as `ledger audit` reads it: one read feeds every check."""
    chains, tally, replay = ChainAudit(), IntakeTally(), Fold()
    for event in app.stored_events():
        chains.see(event)
        tally.see(event)
        replay.see(event)
    tally.result(app.process_recorder.max_tracking_id)
    view_documents(replay.views())
    app.snapshot_findings(streams_named(chains, tally))
    app.applied_id_findings(chains.applied_ids.summary())


def timed(count: int, step: Callable[[], object], repeat: int) -> dict[str, float]:
    """Events per second of the best of `repeat` runs, by wall clock and by own CPU."""
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        step()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return {"per_s": rate(count, min(walls)), "per_cpu_s": rate(count, min(cpus))}


def measure(
    app: LedgerApp, repeat: int = 1, steps: tuple[str, ...] = ("replay", "audit")
) -> dict[str, Any]:
    # Folding from memory needs the events held; otherwise one counting read is enough.
    events = list(app.stored_events()) if "fold" in steps else []
    count = len(events) if "fold" in steps else sum(1 for _ in app.stored_events())
    runs: dict[str, Callable[[], object]] = {
        "read": lambda: sum(1 for _ in app.stored_events()),
        "fold": lambda: fold(events),
        "replay": lambda: fold(app.stored_events()),
        "audit": lambda: audit_log(app),
    }
    figures: dict[str, Any] = {"events": count}
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
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    tune_for_long_runs()  # as the `ledger` command does
    figures = measure(
        LedgerApp(parse_store_url(args.store)), args.repeat, ("read", "fold", "replay", "audit")
    )
    if args.json:
        print(json.dumps(figures, sort_keys=True))
        return
    print(f"{figures['events']:,} stored events, best of {args.repeat}")
    for step in ("read", "fold", "replay", "audit"):
        got = figures[step]
        print(f"{step:8s} {got['per_s']:>10,.0f} /s   {got['per_cpu_s']:>10,.0f} per CPU second")


if __name__ == "__main__":
    main()
