"""`python -m bench.batch_sizes` shows what bigger batches save an event."""

import json

import pytest

from bench.batch_sizes import main


@pytest.mark.postgres
def test_bench_batch_sizes_shows_fewer_view_bytes_an_event_in_bigger_batches(
    postgres_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    main(
        [
            *("--accounts", "20", "--records", "1300", "--warm", "100"),
            *("--sizes", "10,600", "--repeat", "2", "--admin-url", postgres_server, "--json"),
        ]
    )
    rows = json.loads(capsys.readouterr().out)
    assert [(row["round"], row["batch"]) for row in rows] == [(1, 10), (1, 600), (2, 10), (2, 600)]
    small, big = rows[0], rows[1]
    # An account's documents are written once a batch: 30 events an account a batch write
    # a fraction of what one does. The same records give the same bytes in every round.
    assert big["view_bytes"] * 2 < small["view_bytes"]
    assert [row["view_bytes"] for row in rows[2:]] == [small["view_bytes"], big["view_bytes"]]
    for row in rows:
        assert row["process_us"] > 0 and row["postgresql_us"] > 0


@pytest.mark.postgres
def test_bench_batch_sizes_prints_a_table_for_people(
    postgres_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    main(
        [
            *("--accounts", "5", "--records", "200", "--warm", "50", "--sizes", "25"),
            *("--repeat", "1", "--uuid-ids", "--admin-url", postgres_server),
        ]
    )
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["round", "batch", "PostgreSQL", "us", "process", "us", "view", "B"]
    assert out[1].split()[:2] == ["1", "25"] and out[2].startswith("(per event") and len(out) == 3


def test_bench_batch_sizes_refuses_a_run_with_nothing_to_measure() -> None:
    with pytest.raises(SystemExit, match="leaves nothing after --warm 100"):
        main(["--accounts", "2", "--records", "100", "--warm", "100"])
