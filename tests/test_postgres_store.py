"""The same ledger on the real PostgreSQL server (issue 2): same balances as SQLite."""

from pathlib import Path

import pytest

from tests.cli_helpers import balances, run, run_json
from tests.factories import MIXED_MONTH_BALANCES, MIXED_MONTH_COUNTS, mixed_month

pytestmark = pytest.mark.postgres


def test_file_ingested_into_sqlite_and_postgres_gives_the_same_balances(
    tmp_path: Path, sqlite_url: str, postgres_url: str
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(mixed_month(), encoding="utf-8")
    into_sqlite = run_json("--store", sqlite_url, "ingest", "--quiet", str(path))
    into_postgres = run_json("--store", postgres_url, "ingest", "--quiet", str(path))
    assert into_sqlite["totals"] == into_postgres["totals"] == MIXED_MONTH_COUNTS
    on_sqlite = balances(sqlite_url, "ACC-1", "ACC-2")
    on_postgres = balances(postgres_url, "ACC-1", "ACC-2")
    assert on_sqlite == on_postgres == MIXED_MONTH_BALANCES


def test_G1_postgres_second_ingest_is_all_duplicates(tmp_path: Path, postgres_url: str) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(mixed_month(), encoding="utf-8")
    run("--store", postgres_url, "ingest", "--quiet", str(path))
    again = run_json("--store", postgres_url, "ingest", "--quiet", str(path))
    assert again["totals"]["applied"] == 0
    assert balances(postgres_url, "ACC-1", "ACC-2") == MIXED_MONTH_BALANCES


def test_postgres_rebuilt_view_equals_live(tmp_path: Path, postgres_url: str) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(mixed_month(), encoding="utf-8")
    run("--store", postgres_url, "ingest", "--quiet", str(path))
    live = balances(postgres_url, "ACC-1", "ACC-2")
    run("--store", postgres_url, "rebuild")
    assert balances(postgres_url, "ACC-1", "ACC-2") == live


def test_LEDGER_STORE_environment_selects_postgres(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(mixed_month(), encoding="utf-8")
    monkeypatch.setenv("LEDGER_STORE", postgres_url)
    monkeypatch.chdir(tmp_path)
    run("ingest", "--quiet", str(path))
    assert run_json("balance", "ACC-1")["balance"] == "27.3325"
    assert not (tmp_path / "ledger.db").exists()  # nothing went to the SQLite default


@pytest.mark.parametrize("command", [["audit"], ["balance", "ACC-1"], ["rebuild"]])
def test_a_database_without_a_ledger_is_refused_and_left_as_it_was(
    postgres_url: str, command: list[str]
) -> None:
    """A read-only command pointed at an empty (or mistyped) database says so in one line and
    makes no tables there: `audit` must never answer "adds up" for a ledger that is not there."""
    from urllib.parse import urlsplit

    import psycopg

    result = run("--store", postgres_url, *command, expect=1)
    url = urlsplit(postgres_url)
    assert result.stderr.splitlines() == [
        f"ledger: error: no ledger store in database {url.path[1:]} at {url.hostname}:{url.port}: "
        "ingest or consume events into it first"
    ]
    with psycopg.connect(postgres_url) as db:
        tables = db.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        assert tables.fetchall() == []
