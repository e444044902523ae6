"""An account's past periods are settled: read alone when wanted, never with its current
documents (issue 8, round 10).

A closed invoice and the minutes of a period before its number's latest plan grant are
written `settled`. A consumer reads an account's current documents at once and keeps only
those, so what it reads and holds per account stays flat as the account's months pile up,
while a late call (B3) or a port (P1) still finds the past documents it wants.
"""

from collections.abc import Iterator
from typing import Any

import orjson
import psycopg
import pytest

from bench.traffic import generate
from consumers.pipeline import RawRecord, process_batch
from ledger.application import LedgerApp
from ledger.store import parse_store_url
from projections.invoices import (
    CHARGES_PER_CHUNK,
    CHARGES_VIEW,
    LAYOUT,
    HeldInvoices,
    OutdatedInvoiceLayout,
    empty_invoice,
    published,
    read_invoices,
)
from projections.minutes import is_past
from projections.projection import KnownDocuments, ViewChanges
from projections.runner import ViewsAlongside, catch_up, fold, view_documents
from projections.store import VIEW_TABLE, open_view_store
from projections.store_postgres import PostgresViewStore
from tests.factories import catalog_published, event, opened

MONTHS = 5
ACCOUNTS = 12
USAGE_A_MONTH = 300
ACC = "ACC-SETTLE"
NUM = "+14155550101"
NEW = "+14155550777"  # the temporary number a port-in request gives the account
PORTED = "+13125550199"
US = "+12125550100"


def _months() -> Iterator[list[bytes]]:
    """The bench's traffic, a month at a time (the first also holds the catalog and setup)."""
    lines = list(generate(ACCOUNTS, USAGE_A_MONTH, seed=5, months=MONTHS))
    setup = len(lines) - MONTHS * (USAGE_A_MONTH + ACCOUNTS)
    starts = [0] + [setup + m * (USAGE_A_MONTH + ACCOUNTS) for m in range(1, MONTHS)]
    for start, end in zip(starts, [*starts[1:], len(lines)], strict=True):
        yield lines[start:end]


def _consume(
    app: LedgerApp, alongside: ViewsAlongside, lines: list[bytes], start: int
) -> list[object]:
    """Dead letters of one batch, stored with its views alongside."""
    letters: list[object] = []
    records = [RawRecord(start + i + 1, line) for i, line in enumerate(lines)]
    process_batch(app, "kafka", records, letters.extend, None, alongside)
    return letters


def _is_settled_by_rule(views: PostgresViewStore, name: str, doc: dict[str, Any]) -> bool:
    """Whether the projections' rule settles the document "view/key"."""
    view, key = name.split("/", 1)
    if view == "invoices":
        return bool(doc["status"] == "closed")
    if view == CHARGES_VIEW:
        return True  # a filed chunk of charges is complete when it is written
    if view == "minutes":
        account_id, msisdn, period = key.split("|")
        return is_past(period, views.get("plans", f"{account_id}|{msisdn}"))
    return False


def _settled_flags(url: str) -> dict[tuple[str, str], bool]:
    with psycopg.connect(url) as db:
        rows = db.execute(f"SELECT view, key, settled FROM {VIEW_TABLE}").fetchall()
    return {(view, key): settled for view, key, settled in rows}


class ViewsReadAlone(PostgresViewStore):
    """The real store, telling which views' documents were read one by one."""

    def __init__(self, conninfo: str) -> None:
        super().__init__(conninfo)
        self.read_alone: list[str] = []

    def get(self, view: str, key: str) -> dict[str, Any] | None:
        self.read_alone.append(view)
        return super().get(view, key)


def test_a_consumer_reads_and_keeps_only_its_accounts_current_documents(
    postgres_url: str,
) -> None:
    store = parse_store_url(postgres_url)
    app = LedgerApp(store)
    accounts = [f"ACC-{a:06d}" for a in range(ACCOUNTS)]
    stored, current_read, kept = [], [], []
    with ViewsReadAlone(postgres_url) as views:
        alongside = ViewsAlongside(app, views)
        start = 0
        read_alone: list[str] = []
        for month in _months():
            views.read_alone.clear()
            for first in range(0, len(month), 100):
                _consume(app, alongside, month[first : first + 100], start + first)
            read_alone += views.read_alone
            start += len(month)
            every = view_documents(views)
            current = views.documents_of(accounts)
            assert current is not None
            for (view, key), doc in current.items():
                assert not _is_settled_by_rule(views, f"{view}/{key}", doc), (view, key)
            assert len(every) - len(current) == sum(
                _is_settled_by_rule(views, name, doc) for name, doc in every.items()
            )
            for (view, key), doc in alongside.known.docs.items():
                assert not _is_settled_by_rule(views, f"{view}/{key}", doc), (view, key)
            stored.append(len(every))
            current_read.append(len(current))
            kept.append(len(alongside.known.docs))
        assert view_documents(views) == view_documents(fold(app.stored_events()))
        # Only a late call's past minutes were read alone; a new invoice or a number's first
        # plan is known absent without asking the store.
        assert 0 < len(read_alone) == read_alone.count("minutes"), read_alone
    # Every month adds closed invoices and past minutes; what is read and kept stays flat.
    assert stored == sorted(stored) and stored[-1] > stored[1] + 2 * ACCOUNTS, stored
    assert current_read[1:] == [current_read[1]] * (MONTHS - 1), current_read
    assert max(kept[1:]) <= current_read[1], (kept, current_read)


def _story() -> list[dict[str, Any]]:
    """One account's three months of plan minutes on a number a port-in replaces, a late call
    on minutes already past, then the port's completion."""
    return [
        catalog_published(),
        opened(ACC, "postpaid"),
        event("number.added", ACC, "2026-11-01T10:00:00Z", msisdn=NUM),
        event("port_in.requested", ACC, "2026-11-02T10:00:00Z", msisdn=NEW, ported_msisdn=PORTED),
        event(
            "plan.purchased",
            ACC,
            "2026-11-02T11:00:00Z",
            msisdn=NEW,
            plan_id="na-500",
            channel="portal",
            autorenew=True,
        ),
        event("cycle.started", ACC, "2026-12-01T00:00:00Z", period="2026-12"),
        event("cycle.started", ACC, "2027-01-01T00:00:00Z", period="2027-01"),
        event(
            "call.completed",
            ACC,
            "2026-12-20T10:00:00Z",  # late: 2026-12's minutes are past (B3)
            msisdn=NEW,
            destination=US,
            duration_seconds=120,
            call_id="late-call",
        ),
        event("port_in.completed", ACC, "2027-01-10T10:00:00Z", msisdn=NEW, ported_msisdn=PORTED),
    ]


def test_B3_late_calls_and_P1_ports_find_past_minutes_a_consumer_did_not_read(
    postgres_url: str,
) -> None:
    store = parse_store_url(postgres_url)
    app = LedgerApp(store)
    with open_view_store(store) as views:
        assert isinstance(views, PostgresViewStore)
        alongside = ViewsAlongside(app, views)
        for n, fact in enumerate(_story()):  # a batch each: every one reads its account again
            alongside.forget()
            assert _consume(app, alongside, [orjson.dumps(fact)], n) == []
        assert view_documents(views) == view_documents(fold(app.stored_events()))
        late = views.get("minutes", f"{ACC}|{PORTED}|2026-12")
        assert late is not None and late["used_seconds"] == 120
    flags = _settled_flags(postgres_url)
    assert {key: settled for (view, key), settled in flags.items() if view == "minutes"} == {
        f"{ACC}|{PORTED}|2026-11": True,
        f"{ACC}|{PORTED}|2026-12": True,
        f"{ACC}|{PORTED}|2027-01": False,
    }
    assert flags[("invoices", f"{ACC}|2026-11")] and flags[("invoices", f"{ACC}|2026-12")]
    assert not flags[("invoices", f"{ACC}|2027-01")]


def test_an_older_view_table_is_settled_as_the_projections_settle_it(postgres_url: str) -> None:
    store = parse_store_url(postgres_url)
    app = LedgerApp(store)
    with open_view_store(store) as views:
        for n, month in enumerate(_months()):
            records = [RawRecord(n * 10_000 + i, line) for i, line in enumerate(month)]
            process_batch(app, "file", records, lambda letters: None)
        catch_up(app, views)
    written = _settled_flags(postgres_url)
    assert sum(written.values()) > 2 * ACCOUNTS, "months of closed invoices and past minutes"
    with psycopg.connect(postgres_url, autocommit=True) as db:  # the table as it was before
        db.execute(f"DROP INDEX {VIEW_TABLE}_current_account")
        db.execute(f"ALTER TABLE {VIEW_TABLE} DROP COLUMN settled")
        db.execute(f"CREATE INDEX {VIEW_TABLE}_account ON {VIEW_TABLE} (split_part(key, '|', 1))")
    with open_view_store(store) as views:
        assert _settled_flags(postgres_url) == written
        current = views.documents_of([f"ACC-{a:06d}" for a in range(ACCOUNTS)])
        assert current is not None and len(current) == len(written) - sum(written.values())
    with psycopg.connect(postgres_url) as db:
        indexes = {
            name
            for (name,) in db.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename = %s", (VIEW_TABLE,)
            )
        }
    assert f"{VIEW_TABLE}_account" not in indexes and f"{VIEW_TABLE}_current_account" in indexes


@pytest.mark.parametrize("settled", [False, True])
def test_a_settled_document_is_read_alone_when_an_event_wants_it(
    postgres_url: str, settled: bool
) -> None:
    key = ("invoices", "ACC-1|2026-11")
    with PostgresViewStore(postgres_url) as views:
        views.write({key: {"status": "closed"}}, 0, 1, settled=[key] if settled else [])
        known = KnownDocuments()
        changes = ViewChanges(views, known)
        changes.prefetch({"ACC-1"})
        assert (key in known.docs) is not settled
        assert changes.get(*key) == {"status": "closed"}
        assert changes.get("invoices", "ACC-1|2026-12") is None


def test_a_busy_months_filed_charges_are_settled_neither_read_nor_kept_by_a_consumer(
    postgres_url: str,
) -> None:
    """An invoice's filed chunks of charge ids are written once, settled: a consumer reads and
    keeps only the invoice, whose latest charges stay fewer than a chunk."""
    calls = [
        event(
            "call.completed",
            ACC,
            f"2026-11-{2 + n // 100:02d}T{n % 100 // 10:02d}:{n % 10:02d}:00Z",
            msisdn=NUM,
            destination=US,
            duration_seconds=60,
            call_id=f"busy-{n}",
        )
        for n in range(3 * CHARGES_PER_CHUNK + 10)
    ]
    setup = [catalog_published(), opened(ACC, "postpaid")]
    setup.append(event("number.added", ACC, "2026-11-01T10:00:00Z", msisdn=NUM))
    lines = [orjson.dumps(e) for e in setup + calls]
    app = LedgerApp(parse_store_url(postgres_url))
    with PostgresViewStore(postgres_url) as views:
        alongside = ViewsAlongside(app, views)
        for first in range(0, len(lines), 45):
            assert _consume(app, alongside, lines[first : first + 45], first) == []
            invoice = alongside.known.docs[("invoices", f"{ACC}|2026-11")]
            assert len(invoice["charges"]) < CHARGES_PER_CHUNK
            assert not any(view == CHARGES_VIEW for view, _ in alongside.known.docs)
        settled = _settled_flags(postgres_url)
        filed = {key: flag for (view, key), flag in settled.items() if view == CHARGES_VIEW}
        assert filed == {f"{ACC}|2026-11|{chunk:06d}": True for chunk in range(3)}
        current = views.documents_of([ACC])
        assert current is not None and ("invoices", f"{ACC}|2026-11") in current
        assert not any(view == CHARGES_VIEW for view, _ in current)
        [line] = [ln for ln in read_invoices(views, ACC)[0]["lines"] if ln["kind"] == "payg_calls"]
        assert line["event_ids"] == [e["event_id"] for e in calls]
        assert view_documents(views) == view_documents(fold(app.stored_events()))


def test_a_consumer_meeting_an_invoice_of_an_earlier_layout_stores_nothing_and_names_the_fix(
    postgres_url: str,
) -> None:
    setup = [catalog_published(), opened(ACC, "postpaid")]
    setup.append(event("number.added", ACC, "2026-11-01T10:00:00Z", msisdn=NUM))
    app = LedgerApp(parse_store_url(postgres_url))
    key = ("invoices", f"{ACC}|2026-11")
    with PostgresViewStore(postgres_url) as views:
        assert _consume(app, ViewsAlongside(app, views), [orjson.dumps(e) for e in setup], 0) == []
        earlier = views.get(*key)
        assert earlier is not None
        del earlier["layout"], earlier["charges"], earlier["charge_chunks"]
        position = views.position()
        views.write({key: earlier}, position, position)
        stored = app.recorder.max_notification_id()
        call = event(
            "call.completed",
            ACC,
            "2026-11-02T10:00:00Z",
            msisdn=NUM,
            destination=US,
            duration_seconds=60,
            call_id="after-upgrade",
        )
        with pytest.raises(OutdatedInvoiceLayout, match="run `ledger rebuild`"):
            _consume(app, ViewsAlongside(app, views), [orjson.dumps(call)], 10)
        assert app.recorder.max_notification_id() == stored
        assert views.get(*key) == earlier


def test_an_invoice_of_a_layout_this_ledger_does_not_know_names_the_layout_it_reads() -> None:
    """Views written by a later version of the ledger are not read as if they were this one's."""
    later = {**empty_invoice(ACC, "2026-11", "postpaid", "USD"), "layout": LAYOUT + 1}
    says = (
        f"invoice {ACC} 2026-11 is in layout {LAYOUT + 1} of the views, and this ledger reads "
        f"layout {LAYOUT}"
    )
    with pytest.raises(OutdatedInvoiceLayout, match=says):
        published(later, [])
    with pytest.raises(OutdatedInvoiceLayout, match=says):
        HeldInvoices().of(later)
