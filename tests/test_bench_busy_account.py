"""`python -m bench.busy_account` shows what one busy account's month costs a consumer."""

import json

import pytest

from bench.busy_account import main
from bench.traffic import generate


@pytest.mark.postgres
def test_bench_busy_account_measures_each_slice_of_the_month(
    postgres_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["--usage", "1200", "--slices", "3", "--admin-url", postgres_server, "--json"])
    rows = json.loads(capsys.readouterr().out)
    month = len(list(generate(1, 1200)))  # and the catalog, the account's setup, a bill run
    per_slice = -(-month // 3)
    assert [row["records"] for row in rows] == [per_slice, 2 * per_slice, month]
    for row in rows:
        assert row["us_per_record"] > 0 and row["written_kib_per_batch"] > 0
        # support's wait for the month's invoice, as a table and with every charge id
        assert row["invoice_table_ms"] > 0 and row["invoice_read_ms"] > 0
        # The statement is the largest document: its lines and at most 99 charges' ids.
        # Holding every charge id of the month, it passed 20 KB two thirds of the way.
        assert 1_000 < row["largest_document_bytes"] < 15_000, row


@pytest.mark.postgres
def test_bench_busy_account_prints_a_table_for_people(
    postgres_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["--usage", "100", "--slices", "1", "--admin-url", postgres_server])
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == [
        *("records", "us/record", "largest", "doc", "B", "written", "KiB/batch"),
        *("table", "read", "ms", "with", "ids", "read", "ms"),
    ]
    assert len(out) == 2 and out[1].split()[0].replace(",", "").isdigit()
    assert len(out[1].split()) == 6
