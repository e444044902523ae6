"""What a consumer writes of the views: no row a batch leaves as it was (issue 8, round 21).

A data record changes a number's data balance or its throttle, seldom both: a number without
an unlimited package has a throttle that never moves, and an unlimited package's data
balance stays as it is. The data projection builds both documents anew; the one that equals
what the store holds is not written again.
"""

from collections.abc import Collection, Mapping
from typing import Any

import orjson
import psycopg

from bench.traffic import generate
from consumers.pipeline import RawRecord, process_batch
from ledger.application import LedgerApp
from ledger.store import parse_store_url
from projections.data import DATA_VIEW, THROTTLE_VIEW
from projections.projection import ViewChanges
from projections.runner import ViewsAlongside, fold, view_documents
from projections.store import Doc, DocKey, MemoryViewStore
from projections.store_postgres import PostgresViewStore

ACC = "ACC-1"


class ViewsWrittenChecked(PostgresViewStore):
    """The views on PostgreSQL, checking each data and throttle document it is given to write
    against the row the store holds before writing it."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.written = 0
        self.unchanged: list[DocKey] = []

    def write_documents(
        self,
        cur: "psycopg.Cursor[Any]",
        changes: Mapping[DocKey, Doc | None],
        settled: Collection[DocKey] = (),
    ) -> None:
        for (view, key), doc in changes.items():
            if view not in (DATA_VIEW, THROTTLE_VIEW) or doc is None:
                continue
            self.written += 1
            row = cur.execute(
                f"SELECT doc FROM {self.table} WHERE view = %s AND key = %s", (view, key)
            ).fetchone()
            if row is not None and orjson.loads(row["doc"]) == doc:
                self.unchanged.append((view, key))
        super().write_documents(cur, changes, settled)


def test_a_consumer_writes_no_data_or_throttle_document_a_batch_left_as_it_was(
    postgres_url: str,
) -> None:
    lines = list(generate(20, 1500, seed=3))
    app = LedgerApp(parse_store_url(postgres_url))
    with ViewsWrittenChecked(postgres_url) as views:
        alongside = ViewsAlongside(app, views)
        for start in range(0, len(lines), 100):
            records = [
                RawRecord(start + i + 1, line) for i, line in enumerate(lines[start : start + 100])
            ]
            letters: list[object] = []
            process_batch(app, "kafka", records, letters.extend, None, alongside)
        data_records = sum(b'"data.used"' in line for line in lines)
        assert data_records > 500, data_records
        assert views.unchanged == []
        # Fewer writes than data records changed a document, and the views are a replay's.
        assert 0 < views.written < 2 * data_records, (views.written, data_records)
        assert view_documents(views) == view_documents(fold(app.stored_events()))


class ReadAtOnce(MemoryViewStore):
    """An in-memory store that reads an account's documents at once, as PostgreSQL does."""

    def documents_of(self, account_ids: Collection[str]) -> dict[DocKey, Doc] | None:
        return {
            (view, key): orjson.loads(text)
            for (view, key), text in self._docs.items()
            if key.split("|", 1)[0] in account_ids
        }


def test_a_document_equal_to_the_one_read_is_not_put_and_any_other_is() -> None:
    store = ReadAtOnce()
    held = {"account_id": ACC, "throttled": False}
    store.write({(THROTTLE_VIEW, f"{ACC}|1"): held}, expected=0, position=1)
    changes = ViewChanges(store)
    changes.prefetch({ACC})
    changes.put_if_changed(THROTTLE_VIEW, f"{ACC}|1", dict(held))
    assert changes.changed == {}
    moved = {**held, "throttled": True}
    changes.put_if_changed(THROTTLE_VIEW, f"{ACC}|1", moved)
    changes.put_if_changed(THROTTLE_VIEW, f"{ACC}|2", dict(held))  # not held: put
    assert changes.changed == {
        (THROTTLE_VIEW, f"{ACC}|1"): moved,
        (THROTTLE_VIEW, f"{ACC}|2"): held,
    }
    # Changed in this step, then built again as it was read: the latest is what is written.
    changes.put_if_changed(THROTTLE_VIEW, f"{ACC}|1", dict(held))
    assert changes.changed[(THROTTLE_VIEW, f"{ACC}|1")] == held
    # Documents not read at once (a replay's store): every one is put.
    replay = ViewChanges(MemoryViewStore())
    replay.put_if_changed(THROTTLE_VIEW, f"{ACC}|1", held)
    assert replay.changed == {(THROTTLE_VIEW, f"{ACC}|1"): held}
