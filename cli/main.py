"""`ledger`: one entry point for ingestion (ingest, consume, publish), support and finance."""

from __future__ import annotations

import re
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from datetime import datetime
from decimal import Decimal
from itertools import takewhile
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NoReturn

import click
from click.core import ParameterSource

from consumers.kafka_settings import DEFAULT_BOOTSTRAP, KafkaSettings
from ledger.canonical import canonical_json
from ledger.errors import LedgerError
from ledger.money import money_text
from ledger.recorder import MAX_LOG_PARTS
from ledger.runtime import tune_for_long_runs
from ledger.store import (
    DEFAULT_STORE_URL,
    StoreConfig,
    check_postgres_store,
    check_sqlite_store,
    parse_store_url,
    store_outages,
)
from projections.store import ViewStore, open_view_store

if TYPE_CHECKING:  # loaded by the commands that use them: a query reads the views alone
    from ledger.application import BatchCounts, LedgerApp
    from ledger.catalog import CatalogVersion


class Context:
    def __init__(self, store_url: str, as_json: bool) -> None:
        self.store_url = store_url
        self.as_json = as_json
        self.checked = False  # the store was found usable once: app() and views() both ask

    @property
    def store(self) -> StoreConfig:
        return parse_store_url(self.store_url)

    def usable_store(self, creates: bool) -> StoreConfig:
        """The store, refused in one line if it is not there to read (`creates`: ingest and
        consume make it) or is not the ledger's (StoreUnusable)."""
        store = self.store
        if self.checked:
            return store
        if store.sqlite_path is not None:
            check_sqlite_store(store.sqlite_path, creates)
        if store.postgres is not None:
            check_postgres_store(store.postgres, creates)
        self.checked = True
        return store

    def app(self, creates: bool = False) -> LedgerApp:
        from ledger.application import LedgerApp

        return LedgerApp(
            self.usable_store(creates),
            notice=lambda line: click.echo(f"ledger: {line}", err=True),
        )

    def views(self, creates: bool = False) -> ViewStore:
        return open_view_store(self.usable_store(creates))

    def emit(self, doc: dict[str, Any], human: str) -> None:
        click.echo(canonical_json(doc) if self.as_json else human)


def fail(message: str) -> NoReturn:
    """One clear line on stderr and a non-zero exit: never a traceback for a user's mistake.
    A driver's message may span lines (libpq adds "Is the server running...?"); it is joined."""
    one_line = re.sub(r"\s*\n\s*", " ", message.strip())
    click.echo(f"ledger: error: {one_line}", err=True)
    sys.exit(1)


def _store_shown() -> str:
    """The store the command was given, as an error names it (without its password)."""
    context = click.get_current_context(silent=True)
    found = context.find_object(Context) if context is not None else None
    return parse_store_url(found.store_url).shown if found is not None else "given"


@contextmanager
def user_errors() -> Iterator[None]:
    try:
        yield
    except LedgerError as error:
        fail(error.reason)
    except OSError as error:
        fail(f"{error.strerror or error}: {error.filename}" if error.filename else str(error))
    except store_outages() as error:
        fail(f"cannot use the store {_store_shown()}: {type(error).__name__}: {error}")
    except Exception as error:  # the Kafka client's failures
        if type(error).__name__ == "KafkaException":  # raised by the client: its module is loaded
            from consumers.kafka import reason_of

            fail(f"Kafka: {reason_of(error)}")
        raise


pass_context = click.make_pass_decorator(Context)


class OneLineUsageError(click.ClickException):
    """A mistake in the command line (a missing argument, a bad option value), shown as one
    line like every other user mistake, where click shows usage, a hint and the error on four.
    Exit status 2, click's for usage errors."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"ledger: error: {self.format_message()}", err=True)


# The options given before the command (with what follows each), which users also try after it.
_OPTIONS_OF_LEDGER = {"--json": "", "--store": " URL"}


def _one_line(error: click.UsageError) -> click.ClickException:
    if isinstance(error, click.exceptions.NoArgsIsHelpError):
        return error  # `ledger` alone, or a group alone: the help itself
    if (
        isinstance(error, click.NoSuchOption)
        and error.option_name in _OPTIONS_OF_LEDGER
        and error.ctx is not None
        and error.ctx.parent is not None
    ):
        option = error.option_name + _OPTIONS_OF_LEDGER[error.option_name]
        command = error.ctx.command_path.removeprefix(error.ctx.find_root().info_name or "")
        return OneLineUsageError(
            f"{error.option_name} is an option of ledger itself: put it before the command, "
            f"as in 'ledger {option}{command} ...'"
        )
    where = f"; see '{error.ctx.command_path} --help'" if error.ctx is not None else ""
    return OneLineUsageError(f"{error.format_message().rstrip('.')}{where}")


class LedgerGroup(click.Group):
    """The `ledger` group: usage errors of every command under it are one line."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as error:
            raise _one_line(error) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as error:
            raise _one_line(error) from None


@click.group("ledger", cls=LedgerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--store",
    envvar="LEDGER_STORE",
    default=DEFAULT_STORE_URL,
    show_default=True,
    help="Event store: sqlite:///FILE (embedded) or postgresql://USER:PASS@HOST:PORT/DB. "
    "Also read from LEDGER_STORE.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON object for machines. Like --store, give it before the command: "
    "ledger --json balance ACC-1001.",
)
@click.pass_context
def main(ctx: click.Context, store: str, as_json: bool) -> None:
    """Event-sourced billing ledger for a telecom operator.

    Facts (calls, data usage, purchases, renewals, ports, surcharges) come in as JSON events
    from files or Kafka; the ledger rates them by the catalog in force and keeps views that
    support and finance query here.
    """
    tune_for_long_runs()
    ctx.obj = Context(store, as_json)


def _counts_line(label: str, totals: BatchCounts, rate: float, extra: str = "") -> str:
    """A progress line of ingest or consume: the counts so far, the rate and any `extra`."""
    return (
        f"{label}: {totals.consumed} read, {totals.applied} applied, "
        f"{totals.duplicates} duplicates, {len(totals.dead_letters)} dead-lettered "
        f"({rate:,.0f} events/s{extra})"
    )


def _progress_printer(label: str) -> Callable[[BatchCounts], None]:
    started = time.monotonic()

    def show(totals: BatchCounts) -> None:
        elapsed = max(time.monotonic() - started, 1e-9)
        click.echo(_counts_line(label, totals, totals.consumed / elapsed), err=True)

    return show


# A consumer runs for months: one progress line per batch would be thousands a minute.
CONSUME_PROGRESS_SECONDS = 10.0


def _consume_progress(every_seconds: float = CONSUME_PROGRESS_SECONDS) -> Callable[..., None]:
    """Progress lines of `consume`, stamped with the time: at most one every `every_seconds`
    while busy, with the rate and retries since the line before, and one when it has caught
    up and waits (with the lag then)."""
    from datetime import UTC

    last = {"at": time.monotonic(), "consumed": 0, "retries": 0}
    shown_once = [False]

    def show(report: Any) -> None:
        now = time.monotonic()
        if shown_once[0] and not report.waiting and now - last["at"] < every_seconds:
            return
        totals = report.totals
        rate = (totals.consumed - last["consumed"]) / max(now - last["at"], 1e-9)
        lag = "unknown" if report.lag is None else str(report.lag)
        retries = report.retries - last["retries"]
        retried = f", {_retried(retries, report.last_error)}" if retries else ""
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        click.echo(
            f"{stamp} {_counts_line('consume', totals, rate, f', lag {lag}{retried}')}", err=True
        )
        last.update(at=now, consumed=totals.consumed, retries=report.retries)
        shown_once[0] = True

    return show


def _retried(retries: int, last_error: str | None) -> str:
    """How a consumer rode out outages, for its progress lines and its final report."""
    return f"{retries} retries, last after {last_error}"


def _views_progress(label: str, every_seconds: float = 1.0) -> Callable[[int, int], None]:
    """A line while the views catch up with the log, at most one a second."""
    last = [float("-inf")]

    def show(folded: int, position: int) -> None:
        now = time.monotonic()
        if now - last[0] >= every_seconds:
            last[0] = now
            click.echo(f"{label}: views: {folded} events folded (position {position})", err=True)

    return show


def _log_progress(label: str, parts: int, done: str) -> Callable[[int, int], None]:
    """Progress lines of a run over the whole log (audit, rebuild), said to be in `parts`
    parts first when it is: this process reads the first and tells its own."""
    if parts > 1:
        click.echo(f"{label}: the log in {parts} parts, one process each", err=True)
    shown = f"{label}: part 1: " if parts > 1 else f"{label}: "

    def show(count: int, position: int) -> None:
        click.echo(f"{shown}{count} events {done} (position {position})", err=True)

    return show


def _counts_doc(counts: BatchCounts) -> dict[str, int]:
    return {
        "consumed": counts.consumed,
        "applied": counts.applied,
        "duplicates": counts.duplicates,
        "dead_lettered": len(counts.dead_letters),
    }


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(allow_dash=True))
@click.option(
    "--dead-letter",
    type=click.Path(dir_okay=False),
    default=None,
    help="Where bad lines go, as JSON lines with reason and original bytes "
    "[default: FILE.deadletter.jsonl beside each input; deadletter.jsonl for stdin].",
)
@click.option(
    "--batch-size",
    default=1000,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="Records applied and committed together (one transaction each).",
)
@click.option("--quiet", is_flag=True, help="No progress lines on stderr.")
@pass_context
def ingest(
    context: Context, files: tuple[str, ...], dead_letter: str | None, batch_size: int, quiet: bool
) -> None:
    """Ingest JSON Lines event files (FILE may be - for stdin), then bring views up to date.

    Each line is one event. Invalid lines, unknown accounts and numbers are written to the
    dead-letter file with the reason, and the run goes on. A repeated event_id is ignored and
    counted as a duplicate, so ingesting the same file twice changes nothing.
    """
    from consumers.files import DeadLetterFile, ingest_stream
    from ledger.application import BatchCounts
    from projections.runner import catch_up

    with user_errors(), ExitStack() as inputs:
        # Every input opened, and every dead-letter file found writable, before the first is
        # applied: one that cannot be used is named before anything of the others is stored.
        streams = [inputs.enter_context(_open_input(name)) for name in files]
        letters_paths = [
            Path(dead_letter or ("deadletter.jsonl" if name == "-" else f"{name}.deadletter.jsonl"))
            for name in files
        ]
        for letters_path in letters_paths:
            _check_writable(letters_path)
        app = context.app(creates=True)
        totals = BatchCounts()
        report: dict[str, Any] = {"files": []}
        try:
            for name, stream, letters_path in zip(files, streams, letters_paths, strict=True):
                source = "stdin" if name == "-" else f"file:{name}"
                sink = DeadLetterFile(letters_path, source, _permission_bits(name, stream))
                show = None if quiet else _progress_printer(name)
                counts = ingest_stream(app, stream, source, sink, batch_size, on_batch=show)
                totals.add(counts)
                report["files"].append(
                    {
                        "file": name,
                        **_counts_doc(counts),
                        "dead_letter_file": str(letters_path) if counts.dead_letters else None,
                    }
                )
        except BaseException:
            # Batches committed before a failure are in the log: the views show them too. The
            # failure is what to report, even if the views cannot be reached either.
            with suppress(Exception), context.views() as views:
                catch_up(app, views)
            raise
        with context.views() as views:
            catch_up(app, views, progress=None if quiet else _views_progress("ingest"))
        report["totals"] = _counts_doc(totals)
        lines = [
            f"{f['file']}: {f['consumed']} read, {f['applied']} applied, "
            f"{f['duplicates']} duplicates, {f['dead_lettered']} dead-lettered"
            + (f" (see {f['dead_letter_file']})" if f["dead_letter_file"] else "")
            for f in report["files"]
        ]
        context.emit(report, "\n".join(lines))


def _check_writable(letters_path: Path) -> None:
    """Refuse a dead-letter file that could not be written, before anything is applied."""
    import os

    folder = letters_path.parent
    why = None
    if letters_path.is_dir():
        why = "it is a directory"
    elif letters_path.exists():
        why = None if os.access(letters_path, os.W_OK) else "permission denied"
    elif not folder.is_dir():
        why = f"there is no directory {str(folder)!r}"
    elif not os.access(folder, os.W_OK):
        why = "permission denied"
    if why is not None:
        raise LedgerError(
            f"cannot write the dead-letter file {letters_path} ({why}); give --dead-letter FILE"
        )


def _permission_bits(name: str, stream: BinaryIO) -> int:
    """Who may read an input's dead letters: whoever may read the file (its read and write
    bits); only the owner for stdin and other streams."""
    import os
    import stat

    if name == "-":
        return 0o600
    status = os.fstat(stream.fileno())
    return stat.S_IMODE(status.st_mode) & 0o666 if stat.S_ISREG(status.st_mode) else 0o600


@contextmanager
def _open_input(name: str) -> Iterator[BinaryIO]:
    if name == "-":
        yield sys.stdin.buffer
    else:
        with open(name, "rb") as stream:
            yield stream


_TOPIC_OPTIONS = {
    "topic": click.option(
        "--topic", default=KafkaSettings.topic, show_default=True, help="Events topic."
    ),
    "catalog_topic": click.option(
        "--catalog-topic",
        default=KafkaSettings.catalog_topic,
        show_default=True,
        help="Topic of catalog.published events (read to its end before rating).",
    ),
    "dead_letter_topic": click.option(
        "--dead-letter-topic",
        default=KafkaSettings.dead_letter_topic,
        show_default=True,
        help="Where records the ledger cannot apply go, with the reason in headers.",
    ),
}


def _kafka_options(*topics: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--bootstrap and the options of the topics the command uses (keys of _TOPIC_OPTIONS),
    each passed as the KafkaSettings field of its name."""
    options = [
        click.option(
            "--bootstrap",
            envvar="LEDGER_KAFKA",
            default=DEFAULT_BOOTSTRAP,
            show_default=True,
            help="Kafka bootstrap servers (also LEDGER_KAFKA).",
        ),
        *(_TOPIC_OPTIONS[name] for name in topics),
    ]

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def _settings(bootstrap: str, **topics_and_group: str) -> KafkaSettings:
    """KafkaSettings of the command's options; a topic it has no option for keeps its default."""
    return KafkaSettings(bootstrap=bootstrap, **topics_and_group)


@main.command()
@_kafka_options("topic", "catalog_topic", "dead_letter_topic")
@click.option("--group", default="ledger", show_default=True, help="Kafka consumer group.")
@click.option(
    "--until-idle",
    type=click.FloatRange(min=0.1),
    default=None,
    help="Stop after this many seconds without a record once partitions are assigned "
    "(batch runs and tests).",
)
@click.option("--quiet", is_flag=True, help="No progress lines on stderr.")
@pass_context
def consume(
    context: Context,
    bootstrap: str,
    topic: str,
    catalog_topic: str,
    dead_letter_topic: str,
    group: str,
    until_idle: float | None,
    quiet: bool,
) -> None:
    """Consume events from Kafka, exactly once, and keep the views current.

    Reads the catalog topic to its end first, then the events topic as a member of GROUP.
    The consumed position is stored with the ledger events it produced, so a restart resumes
    exactly where the last committed batch ended. Stops cleanly on SIGTERM or Ctrl-C.
    """
    from consumers.kafka import ConsumeReport
    from consumers.kafka import consume as run_consumer

    stopping = {"now": False}

    def stop(*_: object) -> None:
        stopping["now"] = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    show = None if quiet else _consume_progress()

    def on_batch(report: ConsumeReport) -> None:
        if show is not None:
            show(report)

    with user_errors():
        settings = _settings(
            bootstrap,
            topic=topic,
            catalog_topic=catalog_topic,
            dead_letter_topic=dead_letter_topic,
            group=group,
        )
        app = context.app(creates=True)
        with context.views() as views:
            report = run_consumer(
                app,
                views,
                settings,
                until_idle=until_idle,
                should_stop=lambda: stopping["now"],
                on_batch=on_batch,
                on_wait=on_batch,
            )
        # The retries ride out outages of the store or broker: a supervisor reads them here
        # even when no progress line was due between the outage and the stop.
        doc = {
            "events": _counts_doc(report.totals),
            "catalog": _counts_doc(report.catalog),
            "retries": report.retries,
            "last_error": report.last_error,
        }
        retried = f"; {_retried(report.retries, report.last_error)}" if report.retries else ""
        context.emit(
            doc,
            f"consumed {report.totals.consumed} events: {report.totals.applied} applied, "
            f"{report.totals.duplicates} duplicates, "
            f"{len(report.totals.dead_letters)} dead-lettered; "
            f"{report.catalog.applied} catalog versions{retried}",
        )


@main.command()
@click.argument("file", type=click.Path(allow_dash=True))
@_kafka_options("topic", "catalog_topic")
@click.option(
    "--no-validate",
    is_flag=True,
    help="Send every line as it is (bad ones included) so consumers dead-letter them.",
)
@click.option(
    "--partitions",
    default=3,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="Partitions of the events topic when it has to be created.",
)
@pass_context
def publish(
    context: Context,
    file: str,
    bootstrap: str,
    topic: str,
    catalog_topic: str,
    no_validate: bool,
    partitions: int,
) -> None:
    """Validate a JSON Lines file, then produce it to Kafka keyed by account_id.

    catalog.published events go to the catalog topic. If any line is invalid, nothing is sent
    and every invalid line is listed (unless --no-validate).
    """
    from consumers.files import read_lines
    from consumers.kafka import publish as run_publish

    with user_errors():
        settings = _settings(bootstrap, topic=topic, catalog_topic=catalog_topic)
        with _open_input(file) as stream:
            records = list(read_lines(stream))
        report = run_publish(records, settings, validate=not no_validate, partitions=partitions)
        if report.invalid:
            for line, reason in report.invalid[:20]:
                click.echo(f"{file}:{line}: {reason}", err=True)
            more = len(report.invalid) - 20
            fail(
                f"{len(report.invalid)} invalid line(s) in {file}; nothing was published"
                + (f" ({more} more not shown)" if more > 0 else "")
            )
        asked = click.get_current_context().get_parameter_source("partitions")
        if (
            report.events
            and asked == ParameterSource.COMMANDLINE
            and report.partitions != partitions
        ):
            click.echo(
                f"ledger: note: topic {topic} already has {report.partitions} partitions; "
                f"--partitions {partitions} applies only to a topic publish creates",
                err=True,
            )
        context.emit(
            {"events": report.events, "catalog_versions": report.catalog_versions},
            f"published {report.events} events to {topic} and "
            f"{report.catalog_versions} catalog versions to {catalog_topic}",
        )


@main.group()
def catalog() -> None:
    """Catalog versions: validate a TOML file, turn it into an event, publish it."""


def _catalog_event(path: str, event_id: str | None) -> dict[str, Any]:
    from ledger.catalog import load_catalog_file
    from ledger.instants import instant_text

    _check_event_id(event_id)
    version = load_catalog_file(path)
    return {
        "event_id": event_id or f"catalog-{version.version}",
        "type": "catalog.published",
        "account_id": "*",
        "occurred_at": instant_text(version.effective_from),
        "schema_version": 1,
        "source": "catalog",
        "catalog": version.to_document(),
    }


@catalog.command("validate")
@click.argument("file", type=click.Path())
@pass_context
def catalog_validate(context: Context, file: str) -> None:
    """Check a catalog TOML file and summarise it."""
    from ledger.catalog import load_catalog_file
    from ledger.instants import instant_text

    with user_errors():
        version = load_catalog_file(file)
        doc = {
            "version": version.version,
            "effective_from": instant_text(version.effective_from),
            "currency": version.currency,
            "rates": len(version.rates),
            "plans": len(version.plans),
            "packages": len(version.packages),
        }
        context.emit(
            doc,
            f"{file}: catalog {doc['version']} ({doc['currency']}) effective "
            f"{doc['effective_from']}: {doc['rates']} rates, {doc['plans']} plans, "
            f"{doc['packages']} packages",
        )


@catalog.command("event")
@click.argument("file", type=click.Path())
@click.option("--event-id", default=None, help="Event id [default: catalog-VERSION].")
def catalog_event(file: str, event_id: str | None) -> None:
    """Print the catalog.published event of a catalog file as one JSON line (for ingest)."""
    with user_errors():
        click.echo(canonical_json(_catalog_event(file, event_id)))


@catalog.command("publish")
@click.argument("file", type=click.Path())
@click.option("--event-id", default=None, help="Event id [default: catalog-VERSION].")
@_kafka_options("catalog_topic")
@pass_context
def catalog_publish(
    context: Context,
    file: str,
    event_id: str | None,
    bootstrap: str,
    catalog_topic: str,
) -> None:
    """Publish a catalog version to the catalog topic as a catalog.published event."""
    from consumers.kafka import publish as run_publish
    from consumers.pipeline import RawRecord

    with user_errors():
        event = _catalog_event(file, event_id)
        settings = _settings(bootstrap, catalog_topic=catalog_topic)
        record = RawRecord(1, canonical_json(event).encode("utf-8"))
        run_publish([record], settings)
        context.emit(
            {"version": event["catalog"]["version"], "topic": catalog_topic},
            f"published catalog {event['catalog']['version']} to {catalog_topic}",
        )


@main.command()
@click.argument("account")
@pass_context
def balance(context: Context, account: str) -> None:
    """Show an account's PAYG balance (negative: the debt the next recharge pays first)."""
    with user_errors(), context.views() as views:
        doc = views.get("balance", account)
        if doc is None:
            fail(f"unknown account {account}")
        context.emit(
            {key: doc[key] for key in ("account_id", "balance", "currency")},
            f"{doc['account_id']}  balance {doc['balance']} {doc['currency']}"
            f"  ({doc['billing_mode']})",
        )


def _known_account(views: ViewStore, account: str) -> dict[str, Any]:
    doc = views.get("balance", account)
    if doc is None:
        fail(f"unknown account {account}")
    return doc


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


# Control characters in text from outside (a carrier's surcharge description) are shown
# escaped, so a newline never breaks a table row in two.
_ESCAPED_CONTROLS = {code: f"\\x{code:02x}" for code in (*range(32), 127)} | {
    ord("\n"): "\\n",
    ord("\r"): "\\r",
    ord("\t"): "\\t",
}
# A CSV cell a spreadsheet would run as a formula (CSV injection) starts with one of these.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")


def _spreadsheet_safe(value: object) -> object:
    """A text cell that would start a formula gets a leading apostrophe, the spreadsheets' own
    mark for text; amounts (`-9.9900`) and phone numbers (`+14155550101`) stay as they are:
    digits alone run nothing."""
    if (
        isinstance(value, str)
        and value.startswith(_FORMULA_STARTS)
        and not _NUMBER.fullmatch(value)
    ):
        return "'" + value
    return value


def _lines(*lines: str) -> str:
    """Lines for people, each kept one line: text from outside (a reason, a description) shows
    its control characters escaped, so it cannot break an entry in two or forge another."""
    return "\n".join(line.translate(_ESCAPED_CONTROLS) for line in lines)


# An amount or a count in a table cell: `_NUMBER` without its "+", so a column of phone
# numbers stays left-aligned like other text.
_AMOUNT = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def _table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain aligned table for people: a column of numbers (amounts, counts; "-" where there
    is none) is right-aligned, its header too, so the header sits over its digits."""
    rows = [[cell.translate(_ESCAPED_CONTROLS) for cell in row] for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    numeric = [
        any(r[i] != "-" for r in rows) and all(r[i] == "-" or _AMOUNT.fullmatch(r[i]) for r in rows)
        for i in range(len(headers))
    ]

    def fmt(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if right else c.ljust(w)
            for c, w, right in zip(cells, widths, numeric, strict=True)
        ).rstrip()

    return "\n".join([fmt(headers), *(fmt(r) for r in rows)])


@main.command()
@click.argument("account")
@click.option("--msisdn", default=None, help="Only this number (E.164).")
@click.option("--period", default=None, help="Only this period (YYYY-MM) [default: the latest].")
@pass_context
def minutes(context: Context, account: str, msisdn: str | None, period: str | None) -> None:
    """Show plan minutes per number: granted, used, remaining and when they expire (V6)."""
    with user_errors(), context.views() as views:
        _known_account(views, account)
        _check_period(period)
        prefix = f"{account}|{msisdn}|" if msisdn else f"{account}|"
        docs = [doc for _, doc in views.scan("minutes", prefix)]
        # A number the account holds has a data document; one it let go may still have
        # minutes of its periods on the account.
        if msisdn and not docs and views.get("data", f"{account}|{msisdn}") is None:
            _unknown_number(account, msisdn)
        if period is None:
            latest: dict[str, dict[str, Any]] = {}
            for doc in docs:
                if doc["msisdn"] not in latest or doc["period"] > latest[doc["msisdn"]]["period"]:
                    latest[doc["msisdn"]] = doc
            docs = [latest[n] for n in sorted(latest)]
        else:
            docs = [doc for doc in docs if doc["period"] == period]
        fields = ["msisdn", "plan_id", "period", "granted", "used", "remaining", "expires_at"]
        lines = [{key: doc[key] for key in fields} for doc in docs]
        human = (
            _table(fields, [[_cell(line[f]) for f in fields] for line in lines])
            if lines
            else f"{account}: no plan minutes" + (f" in {period}" if period else "")
        )
        context.emit({"account_id": account, "lines": lines}, human)


def _check_period(period: str | None) -> None:
    """A --period must name a month, YYYY-MM: one line and exit 1 otherwise."""
    from ledger.instants import parse_period

    if period is not None:
        try:
            parse_period(period, "--period")
        except ValueError as error:
            fail(str(error))


def _number_lines(
    views: ViewStore, view: str, account: str, msisdn: str | None, fields: list[str]
) -> list[dict[str, Any]]:
    if msisdn is not None:  # exactly this number: a key prefix would also match longer ones
        doc = views.get(view, f"{account}|{msisdn}")
        if doc is None:
            _unknown_number(account, msisdn)
        return [{key: doc[key] for key in fields}]
    return [{key: doc[key] for key in fields} for _, doc in views.scan(view, f"{account}|")]


def _check_event_id(event_id: str | None) -> None:
    """An --event-id given must name one: an empty one is not taken for "make a new one"."""
    if event_id is not None and not event_id.strip():
        fail("--event-id must not be empty (leave it out for a new id)")


def _unknown_number(account: str, msisdn: str) -> NoReturn:
    fail(f"unknown number {msisdn} on account {account}")


def _query_instant(at: str | None, option: str = "--at") -> datetime:
    from datetime import UTC

    from ledger.instants import parse_instant

    try:
        return datetime.now(UTC) if at is None else parse_instant(at, option)
    except ValueError as error:
        fail(str(error))


def _over(until: str | None, at: datetime) -> bool:
    from ledger.instants import parse_instant

    return until is not None and parse_instant(until, "until") <= at


_AT_OPTION = click.option(
    "--at",
    "at",
    default=None,
    help="RFC 3339 instant to judge validity and throttles at [default: now]. The figures "
    "are the latest recorded; for an earlier state use `ledger replay ACCOUNT --as-of`.",
)


@main.command()
@click.argument("account")
@click.option("--msisdn", default=None, help="Only this number (E.164).")
@_AT_OPTION
@pass_context
def data(context: Context, account: str, msisdn: str | None, at: str | None) -> None:
    """Show each number's data package: remaining bytes, valid until, unlimited (D1-D9).

    A package whose validity is over at --at (default now) is shown as none: the number uses
    data PAYG from then on.
    """
    fields = ["msisdn", "package_id", "remaining_bytes", "valid_until", "unlimited"]
    with user_errors(), context.views() as views:
        _known_account(views, account)
        instant = _query_instant(at)
        lines = _number_lines(views, "data", account, msisdn, [*fields, "renews"])
        for line in lines:
            renews = line.pop("renews")
            if not renews and _over(line["valid_until"], instant):
                line.update(package_id=None, remaining_bytes=0, valid_until=None, unlimited=False)
        # Data Unlimited has no bytes to count down (D3): "-", not a 0 that reads as used up.
        human = _table(
            fields,
            [
                [
                    _cell(None if f == "remaining_bytes" and line["unlimited"] else line[f])
                    for f in fields
                ]
                for line in lines
            ],
        )
        context.emit({"account_id": account, "lines": lines}, human)


@main.command()
@click.argument("account")
@click.option("--msisdn", default=None, help="Only this number (E.164).")
@_AT_OPTION
@pass_context
def throttle(context: Context, account: str, msisdn: str | None, at: str | None) -> None:
    """Show fair-use throttling per number: throttled since, bytes used, threshold (D3, D8).

    A throttle lifts at the end of its cycle (postpaid: the period; prepaid: the 30-day
    window), judged at --at (default now).
    """
    fields = ["msisdn", "throttled", "since", "fup_used_bytes", "fup_bytes", "lifts_at"]
    with user_errors(), context.views() as views:
        _known_account(views, account)
        instant = _query_instant(at)
        lines = _number_lines(views, "throttle", account, msisdn, fields)
        for line in lines:
            if line["throttled"] and _over(line["lifts_at"], instant):
                line.update(throttled=False, since=None)
        human = _table(fields, [[_cell(line[f]) for f in fields] for line in lines])
        context.emit({"account_id": account, "lines": lines}, human)


@main.command()
@click.argument("account")
@click.option("--msisdn", required=True, help="The calling number (E.164).")
@click.option("--to", "destination", required=True, help="The destination number (E.164).")
@click.option("--at", "at", default=None, help="RFC 3339 instant to authorize at [default: now].")
@pass_context
def authorize(
    context: Context, account: str, msisdn: str, destination: str, at: str | None
) -> None:
    """May this number call that destination now, and for how many seconds (V9)?

    Plan minutes left for the destination's country plus what the prepaid balance buys at
    the PAYG rate, as the ledger holds them now; --at decides the period and the rate in
    force. Exits 0 when allowed, 3 when refused.
    """
    from ledger.rules.voice import authorize as decide_authorization

    with user_errors():
        instant = _query_instant(at)
        app = context.app()
        state = app.account(account)
        if state is None:
            fail(f"unknown account {account}")
        decision = decide_authorization(state, msisdn, destination, instant, app.catalogs())
        doc = {
            "account_id": account,
            "msisdn": msisdn,
            "destination": destination,
            **decision.document(),
        }
        seconds = "no limit" if decision.seconds is None else f"{decision.seconds} s"
        context.emit(
            doc,
            f"{'ALLOWED' if decision.allowed else 'REFUSED'} {msisdn} -> {destination} "
            f"({decision.country}): {seconds if decision.allowed else '0 s'}; {decision.reason}",
        )
        if not decision.allowed:
            sys.exit(3)


@main.command()
@click.argument("account")
@click.option(
    "--limit",
    default=200,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="Show at most this many of the latest entries.",
)
@pass_context
def history(context: Context, account: str, limit: int) -> None:
    """A readable timeline of an account: every fact, its outcome, and the charges it made."""
    from ledger.history import account_history

    with user_errors():
        app = context.app()
        entries = account_history(app, account, latest=limit)
        if entries is None:
            fail(f"unknown account {account}")
        lines = []
        for entry in entries:
            status = "" if entry["status"] == "applied" else f" [{entry['status']}]"
            lines.append(
                f"{entry['occurred_at']}  {entry['type']:<24} {entry['summary']}{status}"
                + (f" ({entry['reason']})" if entry.get("reason") else "")
            )
            if entry["outcome"]:
                lines.append(f"{'':22}  {entry['rule']}: {entry['outcome']}")
            for charge in entry["charges"]:
                lines.append(
                    f"{'':22}  charge {charge['charge_id']}: {charge['amount']} "
                    f"[{charge['kind']}, {charge['rule']}, catalog {charge['catalog_version']}, "
                    f"paid by {charge['payer']}] {charge['arithmetic']}"
                )
        context.emit({"account_id": account, "entries": entries}, _lines(*lines))


def _invoice_text(doc: dict[str, Any]) -> str:
    """A readable invoice or statement: header, one row per line, total (M2)."""
    title = "Invoice" if doc["document"] == "invoice" else "Statement"
    status = doc["status"]
    if doc["closed_at"]:
        status += f" at {doc['closed_at']} (bill run {doc['closed_by']})"
    out = [
        f"{title} {doc['account_id']} {doc['period']}  {doc['billing_mode']}, {doc['currency']}",
        f"status: {status}",
    ]
    rows = [
        [line["description"], line["amount"], str(line["charge_count"])] for line in doc["lines"]
    ]
    if rows:
        out.append(_table(["line", "amount", "charges"], rows))
    else:
        out.append("no charges")
    out.append(f"total {doc['total']} {doc['currency']}")
    if doc["document"] == "statement":
        recharged = sum((Decimal(r["amount"]) for r in doc["recharges"]), start=Decimal("0"))
        out.append(
            f"balance {doc['balance_start']} -> {doc['balance_end']} "
            f"(recharged {money_text(recharged)}, change {doc['balance_change']})"
        )
    return "\n".join(out)


@main.command()
@click.argument("account")
@click.option("--period", default=None, help="The period, YYYY-MM [default: the latest open one].")
@pass_context
def invoice(context: Context, account: str, period: str | None) -> None:
    """Show a postpaid invoice or prepaid statement: lines with the charges behind them.

    Each line names its kind (plan_fees, payg_calls, late_usage, credits, ...) and counts
    its charges; with --json it also lists their ids and their events' (see `ledger history`
    or `ledger export charges`). Amounts are rounded per line to 2 places; the total is the
    sum of the lines shown.
    """
    from projections.invoices import latest_open_period, read_invoices

    with user_errors(), context.views() as views:
        _known_account(views, account)
        _check_period(period)
        # One invoice read, not every month the account has had; its table counts each
        # line's charges, and only --json lists their ids, read from its filed chunks.
        shown = period or latest_open_period(views, account)
        docs = (
            []
            if shown is None
            else read_invoices(views, account, shown, charge_ids=context.as_json)
        )
        if not docs:
            fail(f"no invoice or statement for {account}" + (f" in {period}" if period else ""))
        context.emit(docs[0], _invoice_text(docs[0]))


_INVOICE_COLUMNS = (
    "account_id",
    "period",
    "document",
    "status",
    "currency",
    "line_kind",
    "description",
    "msisdn",
    "line_period",
    "payer",
    "amount",
    "exact_amount",
    "charge_ids",
    "total",
)


def _invoice_rows(docs: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for doc in docs:
        for line in doc["lines"]:
            yield {
                "account_id": doc["account_id"],
                "period": doc["period"],
                "document": doc["document"],
                "status": doc["status"],
                "currency": doc["currency"],
                "line_kind": line["kind"],
                "description": line["description"],
                "msisdn": line["msisdn"],
                "line_period": line["period"],
                "payer": line["payer"],
                "amount": line["amount"],
                "exact_amount": line["exact_amount"],
                "charge_ids": " ".join(line["charge_ids"]),
                "total": doc["total"],
            }


@main.command()
@click.argument("what", type=click.Choice(["invoices", "charges"]))
@click.option("--account", default=None, help="Only this account [default: every account].")
@click.option(
    "--period",
    default=None,
    help="Only this period, YYYY-MM: invoices of that period, or the charges billed on them.",
)
@click.option(
    "--format",
    "form",
    type=click.Choice(["csv", "json"]),
    default=None,
    help="CSV (one row per invoice line or charge) or one JSON object [default: csv, or json "
    "with --json; --json with csv is refused].",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True),
    default="-",
    help="File [default: stdout].",
)
@pass_context
def export(
    context: Context,
    what: str,
    account: str | None,
    period: str | None,
    form: str | None,
    output: str,
) -> None:
    """Export invoices (one row per line) or charges (one row per charge) for accounting tools.

    Charges are read from the event store, so they are exactly what was charged, with rule,
    catalog version, rate and arithmetic; invoices are read from the invoice views.
    """
    import csv

    from ledger.history import CHARGE_COLUMNS, charge_rows
    from projections.invoices import read_invoices

    if context.as_json and form == "csv":
        raise click.UsageError("--json and --format csv ask for two formats: give one")
    with user_errors():
        _check_period(period)
        columns: tuple[str, ...]
        with context.views() as views:
            if account is not None:
                _known_account(views, account)
            if what == "invoices":
                docs = read_invoices(views, account, period)
                records: list[dict[str, Any]] = docs
                rows = list(_invoice_rows(docs))
                columns = _INVOICE_COLUMNS
        if what == "charges":
            app = context.app()
            events = app.stored_events() if account is None else app.account_events(account)
            rows = [
                row
                for row in charge_rows(events)
                if period is None or row["billed_period"] == period
            ]
            records = rows
            columns = CHARGE_COLUMNS
        with click.open_file(output, "w", encoding="utf-8") as stream:
            if (form or ("json" if context.as_json else "csv")) == "json":
                stream.write(canonical_json({what: records}) + "\n")
            else:
                writer = csv.DictWriter(stream, fieldnames=columns, lineterminator="\n")
                writer.writeheader()
                writer.writerows(
                    {
                        key: "" if row[key] is None else _spreadsheet_safe(row[key])
                        for key in columns
                    }
                    for row in rows
                )
        if output != "-":
            click.echo(f"export: {len(rows)} {what} rows written to {output}", err=True)


@main.command()
@click.argument("account", required=False)
@click.option(
    "--processes",
    type=click.IntRange(1, MAX_LOG_PARTS),
    help="Read the whole ledger's log in this many parts, one process each (PostgreSQL "
    "only; an account's audit is one process). Default: one per core for a log of 50,000 "
    "events or more, else one.",
)
@pass_context
def audit(context: Context, account: str | None, processes: int | None) -> None:
    """Prove the ledger adds up (G2, R3); exit 1 and name every finding when it does not.

    \b
    - views: every view document equals a fresh replay of the stored events;
    - chains: each account's events (and the catalog's) form an intact hash chain, so a
      changed, removed or reordered event in the store is caught and named;
    - applied ids: the store's index of the event ids each account applied holds exactly
      those of its events in the log (G1: none applied twice);
    - snapshots: each stream's latest snapshot equals its events replayed to its version;
    - intake (whole ledger only): per source (Kafka partition, file) consumed = applied +
      duplicates + dead-lettered, no batch missing or overlapping, a partition resumes right
      after its last batch, and the records applied equal the ledger events stored.

    Views are first brought up to the end of the log, and the log is audited up to there.
    """
    from ledger.ids import account_stream_id
    from projections.log_audit import audit_account, audit_log, parts_for
    from projections.runner import catch_up, view_documents

    with user_errors():
        app = context.app()
        if processes is not None and processes > 1 and context.store.kind != "postgresql":
            fail("--processes needs a PostgreSQL store; the embedded stores are read by one")
        with context.views() as views:
            if account is not None:
                _known_account(views, account)
            catch_up(app, views)
            live = view_documents(views, account)
            through = views.position()
        # One read of the log feeds every check.
        if account is None:
            parts = processes or parts_for(context.store, through)
            found = audit_log(
                app, through, parts, progress=_log_progress("audit", parts, "checked")
            )
        else:
            found = audit_account(app, account)
        streams, chain_findings = found.streams, found.chain_findings
        if found.replayed is not None:
            view_findings = _view_differences(live, found.replayed)
        else:
            view_findings = [
                f"the stored events cannot be replayed into views ({found.replay_error})"
            ]
        snapshots, snapshot_findings = found.snapshots, found.snapshot_findings
        in_log = found.applied_ids
        applied_findings = app.applied_id_findings(
            in_log, None if account is None else account_stream_id(account)
        )
        doc: dict[str, Any] = {
            "scope": account or "all",
            "chains": {"streams": streams, "findings": chain_findings},
            "views": {"documents": len(live), "findings": view_findings},
            "applied_ids": {"count": in_log.count, "findings": applied_findings},
            "snapshots": {"checked": snapshots, "findings": snapshot_findings},
        }
        findings = chain_findings + applied_findings + view_findings + snapshot_findings
        lines = [
            f"chains: {_counted(streams, 'stream')}, "
            + (_counted(len(chain_findings), "finding") if chain_findings else "intact"),
            f"applied ids: {_counted(in_log.count, 'event id')}, "
            + (_counted(len(applied_findings), "finding") if applied_findings else "indexed"),
            f"views: {_counted(len(live), 'document')}, {_against_replay(view_findings)}",
            f"snapshots: {snapshots} checked, {_against_replay(snapshot_findings)}"
            if snapshots or snapshot_findings
            else "snapshots: none yet",
        ]
        if account is None:
            intake = found.intake.result(app.process_recorder.max_tracking_id)
            doc["intake"] = intake.document()
            findings += intake.findings + [
                f"{s.source}: {finding}" for s in intake.sources for finding in s.findings
            ]
            headers = ["source", "consumed", "applied", "duplicates", "dead-lettered", "resumes at"]
            rows = [
                [
                    s.source,
                    str(s.consumed),
                    str(s.applied),
                    str(s.duplicates),
                    str(s.dead_lettered),
                    _cell(s.resumes_at),
                ]
                for s in intake.sources
            ]
            lines += [
                _table(headers, rows),
                f"intake: {intake.document()['applied']} applied, "
                f"{intake.ledger_events} ledger events stored",
            ]
        doc["adds_up"] = not findings
        doc["findings"] = findings
        lines.append(
            "adds up"
            if not findings
            else "DOES NOT ADD UP:\n" + "\n".join(f"  {f}" for f in findings)
        )
        context.emit(doc, "\n".join(lines))
        if findings:
            sys.exit(1)


def _against_replay(findings: list[str]) -> str:
    if not findings:
        return "equal a replay"
    return f"{len(findings)} {'differs' if len(findings) == 1 else 'differ'} from a replay"


def _counted(count: int, noun: str) -> str:
    """The count with its noun, singular for one: an audit of one account checks 1 stream."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _view_differences(live: dict[str, Any], replayed: dict[str, Any]) -> list[str]:
    findings = []
    for key in sorted(live.keys() | replayed.keys()):
        if key not in live:
            findings.append(f"view {key} is missing (a replay of the log has it)")
        elif key not in replayed:
            findings.append(f"view {key} is not in a replay of the log")
        elif live[key] != replayed[key]:
            fields = sorted(
                f
                for f in live[key].keys() | replayed[key].keys()
                if live[key].get(f) != replayed[key].get(f)
            )
            findings.append(f"view {key} differs from a replay in {', '.join(fields)}")
    return findings


def _why_nothing_changes(events: list[Any], extra: CatalogVersion) -> str:
    """Why a catalog given to `replay --catalog` can re-rate none of the account's facts, when
    it is plain: it prices another currency, or takes effect after the last of them."""
    from ledger.instants import instant_text, parse_instant

    facts = [event.fact for event in events if hasattr(event, "fact")]
    currency = next((f["currency"] for f in facts if f["type"] == "account.opened"), None)
    if currency is not None and currency != extra.currency:
        return f": it prices {extra.currency} and the account is billed in {currency}"
    last = max((parse_instant(f["occurred_at"], "occurred_at") for f in facts), default=None)
    if extra.corrects is None and last is not None and extra.effective_from > last:
        return (
            f": it takes effect at {instant_text(extra.effective_from)}, after the account's "
            f"last fact ({instant_text(last)})"
        )
    return ""


def _stored_events(app: LedgerApp, account: str, through: int | None = None) -> list[Any]:
    """The account's stored events up to stream position `through` (all when None), read
    once; fails with one line for an unknown account."""
    events = list(app.account_events(account, through))
    if not events:
        fail(f"unknown account {account}")
    return events


def _find_charge(app: LedgerApp, account: str, charge_id: str) -> tuple[Any, dict[str, Any]]:
    """The stored event that made the charge, and the charge; fails with one line if none."""
    found = app.charge_of(account, charge_id)
    if found is None:
        if app.account(account) is None:
            fail(f"unknown account {account}")
        fail(f"no charge {charge_id} on account {account}")
    return found


@main.command()
@click.argument("account")
@click.argument("charge_id")
@pass_context
def explain(context: Context, account: str, charge_id: str) -> None:
    """Explain one charge (R4): its source event, rule, catalog version, rate and arithmetic,
    and the invoice or statement it is billed on."""
    with user_errors():
        event, charge = _find_charge(context.app(), account, charge_id)
        doc = {
            "account_id": account,
            "charge": charge,
            "source_event": event.fact,
            "position": event.originator_version,
            "outcome_rule": event.outcome["rule"],
        }
        fact = event.fact
        human = _lines(
            f"charge {charge_id}: {charge['amount']} ({charge['kind']}, paid by "
            f"{charge['payer']}), billed on {charge['billed_period']}",
            f"source event: {fact['event_id']} {fact['type']} at {fact['occurred_at']} "
            f"(position {event.originator_version} of {account})",
            f"rule: {charge['rule']}",
            f"catalog version: {charge['catalog_version']}",
            f"rate: {charge['rate']}",
            f"arithmetic: {charge['arithmetic']}",
        )
        context.emit(doc, human)


@main.command()
@click.argument("account")
@click.argument("charge_id")
@click.option("--reason", required=True, help="The customer's reason, recorded with the decision.")
@click.option("--event-id", default=None, help="Id of the refund.requested event [default: new].")
@click.option("--at", default=None, help="RFC 3339 instant of the request [default: now].")
@pass_context
def dispute(
    context: Context,
    account: str,
    charge_id: str,
    reason: str,
    event_id: str | None,
    at: str | None,
) -> None:
    """Settle a refund dispute (F1, F2): replay to the charge, re-rate its source event, decide.

    Records a refund.requested event. The decision credits the difference when re-rating
    (with any correcting catalog, C4) gives less or the charge duplicates another for the
    same call; a store purchase is refunded by the store (F2); otherwise it is denied, citing
    the refund policy's clause. A credit shows on the next invoice or statement.
    """
    import uuid

    from consumers.pipeline import RawRecord, process_batch
    from ledger.instants import instant_text
    from projections.runner import catch_up

    with user_errors():
        _check_event_id(event_id)
        instant = _query_instant(at)
        app = context.app()
        if app.account(account) is None:
            fail(f"unknown account {account}")
        request_id = event_id or f"dispute-{uuid.uuid4()}"
        fact = {
            "event_id": request_id,
            "type": "refund.requested",
            "account_id": account,
            "occurred_at": instant_text(instant),
            "schema_version": 1,
            "source": "ledger-cli",
            "charge_id": charge_id,
            "reason": reason,
        }
        refused: list[str] = []
        counts = process_batch(
            app,
            "cli:dispute",
            [RawRecord(1, canonical_json(fact).encode("utf-8"))],
            lambda letters: refused.extend(letter.reason for letter in letters),
        )
        if refused:
            fail(refused[0])
        # The decision, or what took its id: one event of the account, not its whole stream.
        decision: Any = next(app.fact_events(account, {request_id}))
        if counts.duplicates:
            taken = decision.fact["type"]
            if taken == "refund.requested":
                fail(f"refund request {request_id} was already decided")
            fail(f"event id {request_id} is taken on account {account} by its {taken} event")
        with context.views() as views:
            catch_up(app, views)
        effects = decision.outcome["effects"]
        doc = {"account_id": account, "event_id": request_id, **effects}
        decided = f"{effects['decision']}: charge {charge_id} ({effects['charged']})"
        if effects["decision"] == "credited":
            human = _lines(f"{decided}, credited {effects['credited']}; {effects['evidence']}")
        else:
            human = _lines(
                f"{decided}; {effects['evidence']}",
                f"policy ({effects['clause']}): {effects['policy']}",
            )
        context.emit(doc, human)


@main.command()
@click.argument("account")
@click.option(
    "--position",
    type=click.IntRange(min=1),
    default=None,
    help="Replay the account's first N stored events (its stream position).",
)
@click.option(
    "--as-of",
    default=None,
    help="Replay the events the ledger had recorded by this RFC 3339 instant.",
)
@click.option(
    "--catalog",
    "catalog_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Re-rate under this catalog version too (a correction or a what-if) and show the "
    "difference charge by charge.",
)
@pass_context
def replay(
    context: Context,
    account: str,
    position: int | None,
    as_of: str | None,
    catalog_file: str | None,
) -> None:
    """Replay an account from its stored events in a throwaway store (R1, R2).

    Prints the account's views as they were at that point (all of them with --json, in
    canonical JSON: byte-identical on every run; each invoice as `ledger invoice` shows it).
    With --catalog, every fact is rated again under the published catalogs, corrected (C4)
    and with that version added, and each charge that comes out differently is listed, with
    what was credited of it already and what a dispute would still credit; nothing is stored.
    """
    from ledger.catalog import load_catalog_file
    from ledger.rerate import corrected_history, rerate
    from projections.runner import fold, shown_views

    with user_errors():
        if position is not None and as_of is not None:
            fail("give --position or --as-of, not both")
        app = context.app()
        # To a position: only that far is read, not a busy account's whole stream.
        events = _stored_events(app, account, position)
        if as_of is not None:
            instant = _query_instant(as_of, "--as-of")
            # The events recorded by then are a prefix of the stream: the first recorded
            # after the instant ends it (the recorded time is not under the hash chain, and a
            # moved one must not take an event out of the middle of the history).
            events = list(takewhile(lambda e: e.timestamp <= instant, events))
        doc: dict[str, Any] = {
            "account_id": account,
            "position": len(events),
            "as_of": as_of,
        }
        if catalog_file is None:
            try:
                docs = shown_views(fold(events), account)
            except AssertionError as error:
                fail(
                    f"the stored events of {account} cannot be replayed ({error}); "
                    "run `ledger audit` to see why"
                )
            doc["views"] = docs
            balance = docs.get(f"balance/{account}", {})
            lines = [
                f"{account} replayed to position {len(events)}: balance "
                f"{balance.get('balance', '-')} {balance.get('currency', '')}"
                if events
                else f"{account}: nothing was recorded by {as_of} (position 0, no views)"
            ]
            for key, view in docs.items():
                if key.startswith("invoices/"):
                    lines.append(
                        f"  {view['document']} {view['period']}: {view['status']}, "
                        f"total {view['total']}"
                    )
            context.emit(doc, "\n".join(lines) + "\n(--json prints every view)")
            return
        extra = load_catalog_file(Path(catalog_file))
        differences, unrated = rerate(events, corrected_history(app.catalogs(), extra))
        total = sum((d.difference for d in differences), start=Decimal("0"))
        owed = sum((d.still_owed for d in differences), start=Decimal("0"))
        doc.update(
            catalog=extra.version,
            differences=[d.document() for d in differences],
            total_difference=money_text(total),
            total_still_owed=money_text(owed),
            unrated=unrated,
        )
        rows = [
            [
                d.charge_id,
                d.kind,
                "-" if d.charged is None else money_text(d.charged),
                "-" if d.rerated is None else money_text(d.rerated),
                money_text(d.difference),
                money_text(d.credited),
                money_text(d.still_owed),
                f"{d.charged_under or '-'} -> {d.rerated_under or '-'}",
            ]
            for d in differences
        ]
        headers = ["charge", "kind", "charged", "re-rated", "difference", "credited", "owed"]
        human = (
            _table([*headers, "catalog"], rows)
            if rows
            else f"no charge of {account} changes under {extra.version}"
            + _why_nothing_changes(events, extra)
        )
        # What disputes would credit now: overcharges less what was credited of them before.
        human += f"\ntotal difference {money_text(total)}; still owed back {money_text(owed)}"
        if unrated:
            human += "\ncannot be rated under these catalogs:\n" + "\n".join(
                f"  {u}" for u in unrated
            )
        context.emit(doc, human)


@main.command("rebuild")
@click.option(
    "--processes",
    type=click.IntRange(1, MAX_LOG_PARTS),
    help="Fold the log in this many parts, one process each (PostgreSQL only). Default: one "
    "per core for a log of 50,000 events or more, else one.",
)
@pass_context
def rebuild_views(context: Context, processes: int | None) -> None:
    """Rebuild every view from the event store (views are disposable; events are the truth).

    On PostgreSQL the views are rebuilt beside the live ones and swapped in at once, so queries
    meanwhile see the views as they were; one rebuild runs at a time. The embedded stores'
    views are emptied and replayed in place.
    """
    from projections.log_audit import parts_for
    from projections.log_rebuild import rebuild_views as rebuild

    with user_errors():
        app = context.app()
        if context.store.kind != "postgresql":
            if processes is not None and processes > 1:
                fail("--processes needs a PostgreSQL store; the embedded stores are rebuilt by one")
            parts = 1
        else:
            parts = processes or parts_for(context.store, app.recorder.max_notification_id() or 0)
        show = _log_progress("rebuild", parts, "replayed")
        with context.views() as views:
            replayed = rebuild(app, views, parts, progress=show)
        context.emit({"replayed": replayed}, f"rebuilt views from {replayed} stored events")


# One line each in `ledger --help`, where click would cut the docstrings' first sentences.
_SUMMARIES = {
    "audit": "Prove the ledger adds up; exit 1 naming each difference",
    "authorize": "May a number call a destination now, and for how long",
    "balance": "An account's PAYG balance",
    "catalog": "Validate, convert and publish catalog versions",
    "consume": "Consume events from Kafka, exactly once",
    "data": "Each number's data package and what is left of it",
    "dispute": "Settle a refund request for one charge",
    "explain": "Why one charge is what it is: rule, rate, arithmetic",
    "export": "Invoices or charges as CSV or JSON for finance",
    "history": "An account's timeline: facts, outcomes, charges",
    "ingest": "Ingest JSON Lines event files (or stdin)",
    "invoice": "A postpaid invoice or prepaid statement",
    "minutes": "Plan minutes per number: granted, used, remaining",
    "publish": "Validate a JSON Lines file and produce it to Kafka",
    "rebuild": "Rebuild every view from the stored events",
    "replay": "Replay an account, or re-rate it under another catalog",
    "throttle": "Fair-use throttling per number",
}
assert set(_SUMMARIES) == set(main.commands), set(main.commands) ^ set(_SUMMARIES)
for _name, _summary in _SUMMARIES.items():
    main.commands[_name].short_help = _summary

# Examples at the foot of each command's help, on the README's sample month (its quick start
# ingests it into the default store) and the services scripts/ starts.
_EXAMPLES = {
    "": (
        "ledger catalog event ledger/catalogs/default.toml > catalog.jsonl",
        "ledger ingest catalog.jsonl examples/sample-month.jsonl",
        "ledger balance ACC-1001",
        "ledger --json invoice ACC-2001 --period 2026-11",
    ),
    "audit": (
        "ledger audit",
        "ledger audit ACC-2001",
        "ledger --store postgresql://ledger:ledger@127.0.0.1:55432/ledger audit --processes 2",
    ),
    "authorize": (
        "ledger authorize ACC-1002 --msisdn +14165550201 --to +12125550100",
        "ledger --json authorize ACC-1001 --msisdn +14155550101 --to +639171234567 "
        "--at 2026-11-20T09:00:00Z",
    ),
    "balance": ("ledger balance ACC-1001", "ledger --json balance ACC-1001"),
    "catalog": (
        "ledger catalog validate ledger/catalogs/default.toml",
        "ledger catalog event ledger/catalogs/default.toml > catalog.jsonl",
    ),
    "catalog event": ("ledger catalog event ledger/catalogs/default.toml > catalog.jsonl",),
    "catalog publish": (
        "ledger catalog publish ledger/catalogs/default.toml --bootstrap 127.0.0.1:19092",
    ),
    "catalog validate": ("ledger catalog validate ledger/catalogs/default.toml",),
    "consume": (
        "ledger --store postgresql://ledger:ledger@127.0.0.1:55432/ledger consume",
        "ledger --store sqlite:///kafka.db consume --until-idle 5",
    ),
    "data": (
        "ledger data ACC-1002 --at 2026-11-30T12:00:00Z",
        "ledger --json data ACC-2001 --msisdn +13105550401",
    ),
    "dispute": ('ledger dispute ACC-1001 sample-00042:payg --reason "call dropped"',),
    "explain": ("ledger explain ACC-2001 sample-00019:fee",),
    "export": (
        "ledger export invoices --period 2026-11 --output invoices-2026-11.csv",
        "ledger export charges --account ACC-2001 --format json",
    ),
    "history": ("ledger history ACC-1001 --limit 20",),
    "ingest": (
        "ledger ingest catalog.jsonl examples/sample-month.jsonl",
        "ledger ingest --dead-letter rejected.jsonl --quiet - < examples/sample-month.jsonl",
    ),
    "invoice": ("ledger invoice ACC-2001 --period 2026-11", "ledger --json invoice ACC-1001"),
    "minutes": (
        "ledger minutes ACC-1001 --period 2026-11",
        "ledger minutes ACC-2001 --msisdn +13105550401",
    ),
    "publish": (
        "ledger publish examples/sample-month.jsonl",
        "ledger publish examples/sample-month.jsonl --no-validate --topic ledger.events",
    ),
    "rebuild": (
        "ledger rebuild",
        "ledger --store postgresql://ledger:ledger@127.0.0.1:55432/ledger rebuild --processes 2",
    ),
    "replay": (
        "ledger replay ACC-2001 --position 10",
        "ledger replay ACC-1001 --as-of 2026-11-15T00:00:00Z",
        "ledger replay ACC-1001 --catalog ledger/catalogs/default.toml",
    ),
    "throttle": ("ledger --json throttle ACC-2002 --at 2026-11-30T12:00:00Z",),
}


def commands_of(group: click.Group, path: str = "") -> dict[str, click.Command]:
    """`group` and every command under it, by its words after `ledger` ("" for `ledger`)."""
    found: dict[str, click.Command] = {path.strip(): group}
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found.update(commands_of(command, f"{path}{name} "))
        else:
            found[path + name] = command
    return found


_COMMANDS = commands_of(main)
assert set(_EXAMPLES) == set(_COMMANDS), set(_COMMANDS) ^ set(_EXAMPLES)
for _path, _command in _COMMANDS.items():
    # "\b" keeps click from running the lines together into one paragraph.
    _command.epilog = "\b\nExamples:\n" + "\n".join(f"  {e}" for e in _EXAMPLES[_path])


if __name__ == "__main__":
    main()
