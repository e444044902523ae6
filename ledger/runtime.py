"""Process-wide settings for the ledger's long runs: consuming, ingesting, replaying, auditing."""

import gc

# Python's cyclic garbage collector starts a pass after every 700 new container objects, and
# scans its older generations every 10 passes. A replay or a consumer holds tens of thousands of
# live events, aggregates and view documents, so those scans cost a third of a replay and a
# quarter of an audit (bench/run.py). The ledger's objects seldom form reference cycles, and
# memory is freed by reference counting as before: the collector only runs less often.
GC_THRESHOLDS = (100_000, 50, 100)


def tune_for_long_runs() -> None:
    """Make the cyclic garbage collector run less often (see GC_THRESHOLDS)."""
    gc.set_threshold(*GC_THRESHOLDS)
