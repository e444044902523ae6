"""`python -m bench.months` shows what an account's past months cost a consumer."""

import json

import pytest

from bench.months import main


@pytest.mark.postgres
def test_bench_months_reads_as_many_documents_after_four_months_as_after_one(
    postgres_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    main(
        [
            *("--accounts", "8", "--usage", "200", "--months", "1,4", "--sample", "100"),
            *("--admin-url", postgres_server, "--json"),
        ]
    )
    first, fourth = json.loads(capsys.readouterr().out)
    assert (first["months"], fourth["months"]) == (1, 4)
    # Every document of an account grows with its months; its current ones do not.
    assert fourth["every_docs_per_account"] > first["every_docs_per_account"] + 2
    assert fourth["stored_docs_per_account"] == fourth["every_docs_per_account"]
    assert fourth["current_docs_per_account"] == first["current_docs_per_account"]
    assert 0 < fourth["restarted_consumer_kept_docs"] <= 8 * fourth["current_docs_per_account"]
    for row in (first, fourth):
        assert row["restarted_consumer_per_s"] > 0 and row["account_load_us"] > 0
        assert row["account_load_together_us"] > 0


@pytest.mark.postgres
def test_bench_months_prints_a_table_for_people(
    postgres_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    main(
        [
            *("--accounts", "4", "--usage", "50", "--months", "2", "--sample", "20"),
            *("--admin-url", postgres_server),
        ]
    )
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["months", "stored", "docs"]
    assert out[1].split()[0] == "2" and out[2].startswith("(per account") and len(out) == 3
