"""File ingestion through the `ledger` command on the embedded SQLite store (G1, G2, issue 2)."""

import io
import json
import os
import socket
import sqlite3
import stat
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException

from cli.main import user_errors
from consumers import files
from tests.cli_helpers import (
    assert_one_line_error,
    balances,
    ingest_events,
    new_store,
    run,
    run_json,
)
from tests.factories import (
    MIXED_MONTH_BALANCES,
    MIXED_MONTH_COUNTS,
    catalog_published,
    event,
    jsonl,
    mixed_month,
    opened,
)


@pytest.mark.parametrize(
    ("text", "records"),
    [
        (b"0123456789\nabc\n", [(1, b"01234567", 10), (2, b"abc", None)]),
        (b"0123456\r\nabc", [(1, b"0123456", None), (2, b"abc", None)]),  # \n in the next read
        (b"01234567\n \n\nabc\n", [(1, b"01234567", None), (4, b"abc", None)]),
        (b"01234567\r89\r\n", [(1, b"01234567", 11)]),  # the \r of the first read was data
        (b"0123456789abcdefghij", [(1, b"01234567", 20)]),  # no ending at all
    ],
)
def test_a_line_is_read_up_to_the_limit_and_its_whole_size_counted(
    monkeypatch: pytest.MonkeyPatch, text: bytes, records: list[tuple[int, bytes, int | None]]
) -> None:
    monkeypatch.setattr(files, "MAX_LINE_BYTES", 8)
    read = [(r.position, r.value, r.whole_size) for r in files.read_lines(io.BytesIO(text))]
    assert read == records


def write(tmp_path: Path, text: str, name: str = "events.jsonl") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_ingest_applies_valid_lines_and_balances_add_up(tmp_path: Path, sqlite_url: str) -> None:
    path = write(tmp_path, mixed_month())
    report = run_json("--store", sqlite_url, "ingest", "--quiet", str(path))
    assert report["totals"] == MIXED_MONTH_COUNTS
    assert balances(sqlite_url, "ACC-1", "ACC-2") == MIXED_MONTH_BALANCES


def test_G2_each_bad_line_is_dead_lettered_with_reason_and_the_run_goes_on(
    tmp_path: Path, sqlite_url: str
) -> None:
    path = write(tmp_path, mixed_month())
    run("--store", sqlite_url, "ingest", "--quiet", str(path))
    letters = [
        json.loads(line)
        for line in (tmp_path / "events.jsonl.deadletter.jsonl").read_text().splitlines()
    ]
    by_line = {letter["line"]: letter for letter in letters}
    assert sorted(by_line) == [8, 9, 10, 11]
    assert by_line[8]["original"] == "this is not JSON"
    assert by_line[8]["reason"].startswith("not JSON")
    assert "amount" in by_line[9]["reason"] and "decimal string" in by_line[9]["reason"]
    assert "occurred_at has no UTC offset" in by_line[10]["reason"]
    assert by_line[11]["reason"] == "unknown account ACC-404"
    # The original bytes are kept whole, so the record can be fixed and replayed.
    assert json.loads(by_line[11]["original"])["account_id"] == "ACC-404"
    # Lines after the bad ones were applied: the last recharge (line 15) is in the balance.
    assert balances(sqlite_url, "ACC-1")["ACC-1"] == "27.3325"


def test_G1_duplicate_event_id_counts_once_and_a_second_ingest_applies_nothing(
    tmp_path: Path, sqlite_url: str
) -> None:
    path = write(tmp_path, mixed_month())
    run("--store", sqlite_url, "ingest", "--quiet", str(path))
    again = run_json("--store", sqlite_url, "ingest", "--quiet", str(path))
    assert again["totals"] == {"consumed": 15, "applied": 0, "duplicates": 11, "dead_lettered": 4}
    assert balances(sqlite_url, "ACC-1", "ACC-2") == MIXED_MONTH_BALANCES


def test_ingest_reads_stdin(tmp_path: Path, sqlite_url: str) -> None:
    text = jsonl(
        catalog_published(), opened("ACC-9"), event("balance.recharged", "ACC-9", amount="3.10")
    )
    dead = tmp_path / "dead.jsonl"
    run("--store", sqlite_url, "ingest", "--quiet", "--dead-letter", str(dead), "-", input=text)
    assert balances(sqlite_url, "ACC-9") == {"ACC-9": "3.1000"}
    assert not dead.exists()


def test_unrated_types_are_recorded_not_dropped(tmp_path: Path, sqlite_url: str) -> None:
    path = write(tmp_path, mixed_month())
    report = run_json("--store", sqlite_url, "ingest", "--quiet", str(path))
    # The call and the data record are applied (recorded), not dead-lettered.
    assert report["totals"]["applied"] == 10


def test_M1_account_in_a_currency_without_catalog_is_dead_lettered(
    tmp_path: Path, sqlite_url: str
) -> None:
    path = write(
        tmp_path,
        jsonl(
            catalog_published(),
            event("account.opened", "ACC-EU", billing_mode="prepaid", currency="EUR"),
        ),
    )
    report = run_json("--store", sqlite_url, "ingest", "--quiet", str(path))
    assert report["totals"]["dead_lettered"] == 1
    letter = json.loads((tmp_path / "events.jsonl.deadletter.jsonl").read_text())
    assert "no catalog is published in EUR" in letter["reason"]


def test_usage_for_a_number_not_on_the_account_is_dead_lettered(
    tmp_path: Path, sqlite_url: str
) -> None:
    path = write(
        tmp_path,
        jsonl(
            catalog_published(),
            opened("ACC-1"),
            event(
                "call.completed",
                "ACC-1",
                msisdn="+14155550999",
                destination="+12125550100",
                duration_seconds=10,
                call_id="c-1",
            ),
        ),
    )
    run("--store", sqlite_url, "ingest", "--quiet", str(path))
    letter = json.loads((tmp_path / "events.jsonl.deadletter.jsonl").read_text())
    assert letter["reason"] == "unknown number +14155550999 on account ACC-1"


def test_blank_lines_are_not_records_and_letters_name_the_file_s_own_line(
    tmp_path: Path, sqlite_url: str
) -> None:
    """G2: blank lines (a trailing one, spaces, CRLF) hold no record and are not counted, as
    the README says; a dead letter's line number is the one an editor shows."""
    good = jsonl(catalog_published(), opened("ACC-1")).strip()
    path = tmp_path / "blanks.jsonl"
    path.write_bytes(f"\n{good}\n   \r\nnot JSON\n\n".encode())
    report = run_json("--store", sqlite_url, "ingest", "--quiet", str(path))
    assert (report["totals"]["consumed"], report["totals"]["applied"]) == (3, 2)
    letter = json.loads((tmp_path / "blanks.jsonl.deadletter.jsonl").read_text())
    assert (letter["line"], letter["original"]) == (5, "not JSON")


def test_dead_letters_are_readable_by_no_more_than_their_input(
    tmp_path: Path, sqlite_url: str
) -> None:
    """A dead-letter file holds the input's records (numbers, amounts): a new one takes the
    input's permission bits (less any the umask takes away), and stdin's is the owner's alone."""
    private = write(tmp_path, jsonl(opened("ACC-1"), {"not": "an event"}))
    private.chmod(0o600)
    run("--store", sqlite_url, "ingest", "--quiet", str(private))
    letters = tmp_path / "events.jsonl.deadletter.jsonl"
    assert stat.S_IMODE(letters.stat().st_mode) == 0o600
    run("--store", sqlite_url, "ingest", "--quiet", "--dead-letter", str(tmp_path / "in.jsonl"),
        "-", input=b'{"not": "an event"}\n')  # fmt: skip
    assert stat.S_IMODE((tmp_path / "in.jsonl").stat().st_mode) == 0o600
    shared = tmp_path / "shared.jsonl"
    shared.write_bytes(b'{"not": "an event"}\n')
    shared.chmod(0o644)
    run("--store", sqlite_url, "ingest", "--quiet", str(shared))
    assert stat.S_IMODE((tmp_path / "shared.jsonl.deadletter.jsonl").stat().st_mode) == 0o644 & ~(
        _umask()
    )


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def test_rebuilt_balance_view_equals_the_live_one(tmp_path: Path, sqlite_url: str) -> None:
    run("--store", sqlite_url, "ingest", "--quiet", str(write(tmp_path, mixed_month())))
    live = balances(sqlite_url, "ACC-1", "ACC-2")
    rebuilt = run_json("--store", sqlite_url, "rebuild")
    assert rebuilt["replayed"] > 0
    assert balances(sqlite_url, "ACC-1", "ACC-2") == live == MIXED_MONTH_BALANCES


def test_balance_of_unknown_account_is_one_line_error(sqlite_url: str) -> None:
    new_store(sqlite_url)
    result = run("--store", sqlite_url, "balance", "NOPE", expect=1)
    assert result.stderr == "ledger: error: unknown account NOPE\n"


READ_ONLY_COMMANDS = [
    ["balance", "ACC-1"],
    ["history", "ACC-1"],
    ["invoice", "ACC-1"],
    ["explain", "ACC-1", "e1:payg"],
    ["dispute", "ACC-1", "e1:payg", "--reason", "dropped"],
    ["replay", "ACC-1"],
    ["audit"],
    ["rebuild"],
]


@pytest.mark.parametrize("args", READ_ONLY_COMMANDS, ids=lambda args: args[0])
def test_a_store_that_is_not_there_is_named_and_not_made(tmp_path: Path, args: list[str]) -> None:
    """A mistyped store path is not answered from a new, empty store (nor "adds up")."""
    path = tmp_path / "typo.db"
    assert_one_line_error(f"sqlite:///{path}", *args, says=f"no ledger store at {path}")
    assert not path.exists()


@pytest.mark.parametrize("args", [*READ_ONLY_COMMANDS, ["ingest", "-"]], ids=lambda a: a[0])
def test_a_store_that_is_not_a_ledger_is_refused_in_one_line_and_left_as_it_was(
    tmp_path: Path, args: list[str]
) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(bytes(range(256)) * 8)
    assert_one_line_error(f"sqlite:///{garbage}", *args, says=f"{garbage} is not an SQLite")
    assert_one_line_error(f"sqlite:///{tmp_path}", *args, says="is a directory")
    other = tmp_path / "other.db"
    with closing(sqlite3.connect(other)) as db:
        db.execute("CREATE TABLE customers (name TEXT)")
        db.commit()
    assert_one_line_error(f"sqlite:///{other}", *args, says="but not a ledger store")
    with closing(sqlite3.connect(other)) as db:
        tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master")]
    assert tables == ["customers"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["dispute", "ACC-1"], "Missing argument 'CHARGE_ID'; see 'ledger dispute --help'"),
        (["history", "ACC-1", "--limit", "0"], "Invalid value for '--limit'"),
        (["export", "invoices", "--format", "xml"], "'xml' is not one of 'csv', 'json'"),
        (
            ["--json", "export", "invoices", "--format", "csv"],
            "--json and --format csv ask for two formats: give one; see 'ledger export --help'",
        ),
        (["catalog", "validate"], "Missing argument 'FILE'; see 'ledger catalog validate --help'"),
        (["nosuch"], "No such command 'nosuch'; see 'ledger --help'"),
        (["--bogus", "balance", "ACC-1"], "No such option '--bogus'"),
        (["catalog", "publish", "c.toml", "--topic", "t"], "No such option '--topic'"),
        (
            ["balance", "ACC-1", "--json"],
            "--json is an option of ledger itself: put it before the command, as in "
            "'ledger --json balance ...'",
        ),
        (
            ["catalog", "validate", "c.toml", "--store", "sqlite:///x.db"],
            "--store is an option of ledger itself: put it before the command, as in "
            "'ledger --store URL catalog validate ...'",
        ),
    ],
    ids=[
        "argument",
        "range",
        "choice",
        "conflict",
        "nested",
        "command",
        "option",
        "unused",
        "json-after",
        "store-after",
    ],
)
def test_a_mistake_in_the_command_line_is_one_line_and_exit_2(
    sqlite_url: str, args: list[str], says: str
) -> None:
    result = run("--store", sqlite_url, *args, expect=2)
    assert result.stdout == ""
    assert result.stderr.startswith("ledger: error: ") and result.stderr.count("\n") == 1
    assert says in result.stderr, result.stderr


def test_the_help_lists_every_command_with_a_whole_summary() -> None:
    """Support reads `ledger --help` to find a command: no summary is cut off with "...", and
    it says where --json and --store go."""
    text = run("--help").stdout
    commands = text.split("Commands:\n")[1].split("\n\n")[0].splitlines()
    assert len(commands) == 17
    assert not [line for line in commands if line.endswith("...")]
    assert "give it before the command" in " ".join(text.split())


def test_ledger_alone_still_shows_its_help() -> None:
    result = run(expect=2)
    assert "Usage: ledger [OPTIONS] COMMAND" in result.stdout + result.stderr


def test_ingest_names_a_directory_it_cannot_make_the_store_in(tmp_path: Path) -> None:
    path = tmp_path / "absent" / "ledger.db"
    assert_one_line_error(
        f"sqlite:///{path}", "ingest", "-", says=f"cannot create the store {path}: no directory"
    )


def writable_except(monkeypatch: pytest.MonkeyPatch, *unwritable: Path) -> None:
    """The permissions of a user who may not write to these paths. Root, who runs the tests on
    CI, may write anywhere, so the operating system is asked through this answer instead."""
    real_access = os.access
    monkeypatch.setattr(
        os,
        "access",
        lambda path, mode: (
            real_access(path, mode) and not (mode & os.W_OK and Path(path) in unwritable)
        ),
    )


def test_a_store_this_user_may_not_write_to_is_named_with_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Support given read access alone to the embedded store is told why it cannot query it
    (SQLite writes its WAL files beside it even to read, and a query brings the views up to
    date), where it was told "not a readable SQLite database (attempt to write a readonly
    database)"."""
    path = tmp_path / "ledger.db"
    store = f"sqlite:///{path}"
    new_store(store)
    why = "and an SQLite store is written to even to be read; run as its owner"
    with monkeypatch.context() as patched:
        writable_except(patched, path)
        assert_one_line_error(
            store, "balance", "ACC-1", says=f"this user may not write to {path}, {why}"
        )
    with monkeypatch.context() as patched:
        writable_except(patched, tmp_path)
        assert_one_line_error(
            store,
            "audit",
            says=f"cannot use the store {path}: this user may not write to {tmp_path}, {why}",
        )
        fresh, letters = tmp_path / "new.db", tmp_path / "letters"
        letters.mkdir()
        assert_one_line_error(
            f"sqlite:///{fresh}",
            "ingest",
            "--dead-letter",
            str(letters / "letters.jsonl"),
            "-",
            says=f"cannot create the store {fresh}: this user may not write to {tmp_path}",
        )
    assert run("--store", store, "audit").stdout.strip().endswith("adds up")


def test_ingest_checks_every_input_is_there_before_applying_any(
    sqlite_url: str, tmp_path: Path
) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text(jsonl(catalog_published()), encoding="utf-8")
    absent = tmp_path / "absent.jsonl"
    assert_one_line_error(
        sqlite_url, "ingest", str(good), str(absent), says=f"No such file or directory: {absent}"
    )
    assert_one_line_error(sqlite_url, "history", "ACC-1", says="no ledger store")  # not made


def test_missing_input_file_is_one_line_error(sqlite_url: str, tmp_path: Path) -> None:
    result = run("--store", sqlite_url, "ingest", str(tmp_path / "absent.jsonl"), expect=1)
    assert result.stderr.startswith("ledger: error:") and result.stderr.count("\n") == 1


def test_bad_store_url_is_one_line_error() -> None:
    result = run("--store", "mysql://x", "balance", "A", expect=1)
    assert "unsupported store URL" in result.stderr


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgresql://ledger:s3cret@127.0.0.1:notaport/ledger", "has an invalid port"),
        ("postgresql://ledger:s3cret@/ledger", "needs a host and a database"),
        ("mysql://ledger:s3cret@db/ledger", "unsupported store URL 'mysql://ledger:***@db/ledger'"),
    ],
)
def test_a_bad_store_url_is_shown_without_its_password(url: str, says: str) -> None:
    result = run("--store", url, "balance", "A", expect=1)
    assert says in result.stderr and "ledger:***@" in result.stderr
    assert "s3cret" not in result.stderr


def test_balance_human_output(tmp_path: Path, sqlite_url: str) -> None:
    run("--store", sqlite_url, "ingest", "--quiet", str(write(tmp_path, mixed_month())))
    result = run("--store", sqlite_url, "balance", "ACC-1")
    assert result.stdout == "ACC-1  balance 27.3325 USD  (prepaid)\n"


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_unreachable_postgresql_is_one_line_error() -> None:
    """libpq's message spans two lines ("Is the server running...?"); the user sees one."""
    store = f"postgresql://ledger:ledger@127.0.0.1:{closed_port()}/ledger"
    assert_one_line_error(store, "balance", "A", says="OperationalError: connection failed")
    result = run("--store", store, "balance", "A", expect=1)
    assert "Is the server running on that host" in result.stderr


@pytest.mark.parametrize("command", [("balance", "A"), ("ingest", "--quiet", "-")])
def test_a_postgresql_server_that_never_answers_is_one_line_error(command: tuple[str, ...]) -> None:
    """A server that takes the connection and says nothing (hung, or a firewall that lets the
    handshake through) times out in psycopg's ConnectionTimeout, not an OperationalError by
    name: the user gets one line naming the store, after the connect timeout, not a
    traceback. Both ways in: a read-only command checks the store, ingest creates it."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes the handshake; nothing ever answers
        port = silent.getsockname()[1]
        store = f"postgresql://ledger:s3cret@127.0.0.1:{port}/ledger"
        assert_one_line_error(
            store,
            *command,
            says=f"cannot use the store postgresql://ledger:***@127.0.0.1:{port}/ledger: "
            "ConnectionTimeout: connection timeout expired",
        )


def test_an_unreachable_kafka_broker_is_one_line_error(tmp_path: Path) -> None:
    """librdkafka keeps trying a broker that is not there; a publish and a consumer give up
    after BROKER_TIMEOUT_SECONDS with one line naming the address and, in librdkafka's words,
    why: run as a user runs them, in a process of their own, where librdkafka's own lines
    (one per client, at every attempt) would reach the terminal too."""
    from consumers.kafka import BROKER_TIMEOUT_SECONDS

    path = tmp_path / "events.jsonl"
    path.write_text(jsonl(opened("ACC-1")), encoding="utf-8")
    store = f"sqlite:///{tmp_path / 'ledger.db'}"
    refused = f"127.0.0.1:{closed_port()}"
    cases = [
        (refused, ["publish", str(path)], "Connection refused"),
        (refused, ["consume", "--until-idle", "1"], "Connection refused"),
        ("no-such-host.invalid", ["consume", "--until-idle", "1"], "Failed to resolve"),
    ]
    for broker, command, why in cases:
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "cli.main", "--store", store, *command, "--bootstrap", broker],
            capture_output=True,
            text=True,
            timeout=4 * BROKER_TIMEOUT_SECONDS + 30,
        )
        assert result.returncode == 1, result
        assert result.stdout == ""
        assert result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith(
            f"ledger: error: no Kafka broker answered at {broker} in 10 s: "
        ), result.stderr
        assert why in result.stderr, result.stderr
        assert "(after " not in result.stderr  # librdkafka's timing of the attempt
        assert time.monotonic() - started < 2 * BROKER_TIMEOUT_SECONDS + 15


@pytest.mark.parametrize(
    "timing",
    [
        "(after 0ms in state CONNECT)",
        "(after 1ms in state CONNECT, 1 identical error(s) suppressed)",
    ],
)
def test_the_reason_a_broker_is_unreachable_leaves_out_librdkafkas_timing(timing: str) -> None:
    """When librdkafka repeats a line it adds how many it suppressed to the timing, which the
    one-line error used to show (the end-to-end test above failed on it now and then)."""
    import logging

    from consumers.kafka import HeldUntilAnswered

    held = HeldUntilAnswered()
    held.hold()
    line = (
        "FAIL [ledger-admin#producer-1] [thrd:127.0.0.1:1/bootstrap]: 127.0.0.1:1/bootstrap: "
        f"Connect to ipv4#127.0.0.1:1 failed: Connection refused {timing}"
    )
    held.filter(logging.LogRecord("rdkafka", logging.ERROR, "", 0, line, None, None))
    assert held.reason() == (
        "127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused"
    )


def test_a_kafka_client_error_is_one_line_in_librdkafkas_words(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Not the error object's repr (KafkaError{code=...,val=...,str=...})."""
    with pytest.raises(SystemExit) as exit_, user_errors():
        raise KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT, "Message timed out"))
    assert exit_.value.code == 1
    assert capsys.readouterr().err == "ledger: error: Kafka: Message timed out\n"


@pytest.mark.parametrize("command", ["minutes", "data", "throttle"])
def test_a_number_the_account_does_not_hold_is_named_not_shown_as_empty(
    tmp_path: Path, sqlite_url: str, command: str
) -> None:
    ingest_events(
        tmp_path,
        sqlite_url,
        catalog_published(),
        opened("ACC-1", "postpaid"),
        event("number.added", "ACC-1", "2026-11-01T10:00:00Z", msisdn="+14155550101"),
    )
    for wrong in ("+14155550199", "12345"):
        assert_one_line_error(
            sqlite_url,
            command,
            "ACC-1",
            "--msisdn",
            wrong,
            says=f"unknown number {wrong} on account ACC-1",
        )
    run("--store", sqlite_url, command, "ACC-1", "--msisdn", "+14155550101")


def test_long_runs_say_how_far_they_are(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An audit tells its progress every so many events (here 5), and ingest while it brings
    the views up to date; --json keeps stdout one object, the lines go to stderr."""
    import projections.log_audit

    monkeypatch.setattr(projections.log_audit, "PROGRESS_EVENTS", 5)
    path = write(tmp_path, mixed_month())
    ingested = run("--store", sqlite_url, "ingest", str(path))
    assert "ingest: views: " in ingested.stderr and "events folded (position " in ingested.stderr
    audited = run("--store", sqlite_url, "--json", "audit")
    progress = audited.stderr.splitlines()
    assert progress[:2] == [
        "audit: 5 events checked (position 5)",
        "audit: 10 events checked (position 10)",
    ]
    assert json.loads(audited.stdout)["adds_up"] is True
    quiet = run("--store", sqlite_url, "ingest", "--quiet", str(path))
    assert quiet.stderr == ""


def test_a_dead_letter_file_that_cannot_be_written_is_named_before_anything_is_applied(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its bad lines would have nowhere to go: the run is refused before the first batch, not
    after some batches were stored."""
    ingest_events(tmp_path, sqlite_url, catalog_published(), opened("ACC-1"))
    path = write(
        tmp_path,
        jsonl(event("balance.recharged", "ACC-1", amount="1.00", event_id="kk1")),
        "more.jsonl",
    )
    letters = tmp_path / "no-such-dir" / "bad.jsonl"
    assert_one_line_error(
        sqlite_url,
        "ingest",
        "--quiet",
        "--dead-letter",
        str(letters),
        str(path),
        says=f"cannot write the dead-letter file {letters} (there is no directory "
        f"'{tmp_path}/no-such-dir'); give --dead-letter FILE",
    )
    (tmp_path / "more.jsonl.deadletter.jsonl").mkdir()  # where its default would go
    assert_one_line_error(
        sqlite_url,
        "ingest",
        "--quiet",
        str(path),
        says=f"cannot write the dead-letter file {path}.deadletter.jsonl (it is a directory)",
    )
    shut, kept = tmp_path / "shut", tmp_path / "kept.jsonl"
    shut.mkdir()
    kept.write_text("")
    with monkeypatch.context() as patched:
        writable_except(patched, shut, kept)  # a folder, and a file that is there
        for letters in (shut / "bad.jsonl", kept):
            assert_one_line_error(
                sqlite_url,
                "ingest",
                "--quiet",
                "--dead-letter",
                str(letters),
                str(path),
                says=f"cannot write the dead-letter file {letters} (permission denied)",
            )
    assert balances(sqlite_url, "ACC-1") == {"ACC-1": "0.0000"}


def test_a_failed_ingest_leaves_the_views_showing_the_batches_it_stored(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that stops partway (here the disk refuses the second batch's dead letter) has
    committed its earlier batches: balance and invoice show them, not only an audit."""
    from consumers.files import DeadLetterFile

    def refused(self: DeadLetterFile, letters: object) -> None:
        raise PermissionError(13, "Permission denied", str(self.path))

    ingest_events(tmp_path, sqlite_url, catalog_published(), opened("ACC-1"))
    path = write(
        tmp_path,
        jsonl(
            event("balance.recharged", "ACC-1", amount="1.00", event_id="kk1"),
            event("balance.recharged", "ACC-1", amount="x", event_id="kk2"),
        ),
        "more.jsonl",
    )
    monkeypatch.setattr(DeadLetterFile, "__call__", refused)
    result = run(
        "--store", sqlite_url, "ingest", "--quiet", "--batch-size", "1", str(path), expect=1
    )
    assert result.stderr.splitlines() == [
        f"ledger: error: Permission denied: {path}.deadletter.jsonl"
    ]
    monkeypatch.undo()
    assert balances(sqlite_url, "ACC-1") == {"ACC-1": "1.0000"}
