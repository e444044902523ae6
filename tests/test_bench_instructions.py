"""bench.instructions counts what a step costs in instructions, free of start-up, and the same
count for the same code and log whatever else the machine is doing."""

import argparse
from collections.abc import Iterable
from pathlib import Path

import pytest

import bench.instructions
from bench.instructions import CountFailed, count, instructions_of, main, per_event, work
from bench.traffic import generate
from consumers.pipeline import RawRecord, process_batch
from ledger.application import LedgerApp
from ledger.store import parse_store_url
from projections.log_audit import PartAudit, audit_events

CACHEGRIND_SUMMARY = """\
==4242== Cachegrind, a high-precision tracing profiler
==4242== Command: python -m bench.instructions --work fold 1
==4242==
==4242== I   refs:      12,516,599,397
"""


def test_the_count_is_read_from_cachegrind_s_summary() -> None:
    assert instructions_of(CACHEGRIND_SUMMARY) == 12_516_599_397
    with pytest.raises(CountFailed, match="no instruction count"):
        instructions_of("==4242== Command: python\n")


def _stored_log(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    app = LedgerApp(parse_store_url(url))
    lines = list(generate(20, 300))
    records = [RawRecord(position, line) for position, line in enumerate(lines)]
    process_batch(app, "bench", records, lambda letters: None)
    return url


def test_a_fold_counts_the_same_instructions_twice(tmp_path: Path) -> None:
    """Two counts of one log's fold agree to within 1% (start-up and imports, the same in
    both of a count's processes, are left out of the figure)."""
    options = [f"--store={_stored_log(tmp_path)}", "--events=300"]
    first, second = per_event("fold", options), per_event("fold", options)
    assert first["events"] == second["events"] == 300
    assert 1_000 < first["per_event"] < 1_000_000  # a start-up counted in would be millions
    assert abs(first["per_event"] - second["per_event"]) <= first["per_event"] // 100


def test_the_counted_process_folds_reads_and_audits_the_events_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = argparse.Namespace(store=_stored_log(tmp_path), events=120)
    assert work("fold", 2, args) == 120
    assert work("read", 1, args) == 120
    audits: list[PartAudit] = []

    def audited(app: LedgerApp, events: Iterable[tuple[int, object]]) -> PartAudit:
        audits.append(audit_events(app, events))
        return audits[-1]

    monkeypatch.setattr(bench.instructions, "audit_events", audited)
    assert work("audit", 2, args) == 120
    assert [(audit.events, audit.chain_findings, audit.replay_error) for audit in audits] == [
        (120, [], None)
    ] * 2
    empty = argparse.Namespace(store=f"sqlite:///{tmp_path / 'empty.db'}", events=120)
    with pytest.raises(SystemExit, match="fold: the store holds no events"):
        work("fold", 1, empty)


def test_consume_stores_a_round_of_batches_and_refuses_too_little_traffic(
    postgres_server: str,
) -> None:
    args = argparse.Namespace(accounts=20, usage=4_000, batches=1, admin_url=postgres_server)
    assert work("consume", 1, args) == 1_000
    too_little = argparse.Namespace(accounts=20, usage=500, batches=1, admin_url=postgres_server)
    with pytest.raises(SystemExit, match=r"consume needs 4,000 records .*raise --usage"):
        work("consume", 1, too_little)


def test_the_command_refuses_unknown_steps_and_a_fold_without_a_store(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for argv, said in (
        (["--steps", "fold,sort"], "unknown steps sort"),
        (["--steps", "read"], "give its --store"),
        (["--steps", "audit"], "give its --store"),
    ):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 2
        assert said in capsys.readouterr().err


def test_a_failed_count_says_why_in_the_counted_process_s_words(tmp_path: Path) -> None:
    """Not valgrind's summary, which it writes last: the reason the process gave."""
    empty = [f"--store=sqlite:///{tmp_path / 'empty.db'}", "--events=10"]
    with pytest.raises(CountFailed) as failed:
        count("fold", 1, empty)
    assert str(failed.value) == (
        "fold: the counted process failed (1): "
        "fold: the store holds no events (store some with `ledger ingest`)"
    )
