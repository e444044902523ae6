"""Every view store finds an account's documents by a prefix of their keys, exactly and in key
order, and reads them as a range of its index rather than a filter over the whole view."""

import orjson
import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.scratch import scratch_database
from ledger.store import memory_store, parse_store_url
from projections.store import (
    LAST_CODE_POINT,
    VIEW_TABLE,
    ViewStore,
    open_view_store,
    prefix_upper_bound,
)
from projections.store_postgres import VIEW_FILLFACTOR, PostgresViewStore

# Keys that sit right next to an account's range: its neighbours by one code point, a longer
# account id with the same start, the characters on either side of the surrogates.
KEYS = [
    "ACC-1",
    "ACC-1|",
    "ACC-1|+1415|2026-11",
    "ACC-1|2026-10",
    "ACC-1}",
    "ACC-1{",
    "ACC-10|2026-11",
    "ACC-1|\ud7ff",
    "ACC-1|\ue000",
    "ACC-1|é",
    f"ACC-1|{LAST_CODE_POINT}",
    f"ACC-1|{LAST_CODE_POINT}x",
    "ACC-2|2026-11",
    "\ud7ff",
    "\ue000",
    LAST_CODE_POINT,
    f"{LAST_CODE_POINT}{LAST_CODE_POINT}",
]
PREFIXES = ["", "ACC-1", "ACC-1|", "ACC-1|+1415|", "ACC-10|", "\ud7ff", LAST_CODE_POINT, "B"]
PREFIXES += [f"ACC-1|{LAST_CODE_POINT}", f"{LAST_CODE_POINT}{LAST_CODE_POINT}"]


@given(st.text(max_size=6), st.text(max_size=3))
def test_a_key_is_in_the_prefix_range_exactly_when_it_starts_with_the_prefix(
    key: str, prefix: str
) -> None:
    bound = prefix_upper_bound(prefix)
    in_range = prefix <= key and (bound is None or key < bound)
    assert in_range == key.startswith(prefix)


@given(st.text(alphabet=st.sampled_from(["a", "\ud7ff", "\ue000", LAST_CODE_POINT]), max_size=4))
def test_the_bound_is_never_a_surrogate(prefix: str) -> None:
    bound = prefix_upper_bound(prefix)
    assert bound is None or bound.encode("utf-8")


def _fill(views: ViewStore) -> None:
    changes = {("invoices", key): {"key": key} for key in KEYS}
    changes[("balance", "ACC-1")] = {"key": "balance"}  # another view, same key
    views.write(changes, expected=0, position=1)


def _check_scans(views: ViewStore) -> None:
    for prefix in PREFIXES:
        expected = sorted(key for key in KEYS if key.startswith(prefix))
        found = list(views.scan("invoices", prefix))
        assert [key for key, _ in found] == expected, prefix
        assert all(doc == {"key": key} for key, doc in found)


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_an_embedded_store_scans_exactly_the_keys_with_the_prefix(
    backend: str, sqlite_url: str
) -> None:
    store = memory_store() if backend == "memory" else parse_store_url(sqlite_url)
    with open_view_store(store) as views:
        _fill(views)
        _check_scans(views)


def test_postgres_scans_exactly_the_keys_with_the_prefix(postgres_url: str) -> None:
    with open_view_store(parse_store_url(postgres_url)) as views:
        _fill(views)
        _check_scans(views)


def test_a_view_table_made_before_keys_were_in_byte_order_is_moved_to_it(
    postgres_url: str,
) -> None:
    conninfo = parse_store_url(postgres_url).postgres
    assert conninfo is not None
    with psycopg.connect(conninfo.conninfo(), autocommit=True) as db:
        # The table as earlier versions made it: keys in the database's default collation.
        db.execute(
            f"CREATE TABLE {VIEW_TABLE} (view TEXT NOT NULL, key TEXT NOT NULL, "
            "doc TEXT NOT NULL, PRIMARY KEY (view, key))"
        )
        db.execute(f"INSERT INTO {VIEW_TABLE} VALUES ('balance', 'ACC-1', '{{\"kept\": true}}')")
    with open_view_store(parse_store_url(postgres_url)) as views:
        assert isinstance(views, PostgresViewStore)
        assert views.key_collation() == "C"
        assert views.document_compression() == "lz4"
        assert views.fillfactor() == VIEW_FILLFACTOR < 100
        assert views.get("balance", "ACC-1") == {"kept": True}
        views.write({("invoices", key): {"key": key} for key in KEYS}, expected=0, position=1)
        _check_scans(views)


def test_a_new_view_table_compresses_with_lz4_and_leaves_room_for_updates(
    postgres_url: str,
) -> None:
    """PostgreSQL compresses documents over 2 kB (lz4 costs it about half the CPU of pglz), and
    room on each page lets it update a document without touching the indexes."""
    month = {"lines": [{"charge_id": f"ACC-1-c{i}", "amount": "0.1000"} for i in range(200)]}
    with open_view_store(parse_store_url(postgres_url)) as views:
        assert isinstance(views, PostgresViewStore)
        assert views.document_compression() == "lz4"
        assert views.fillfactor() == VIEW_FILLFACTOR < 100
        views.write({("invoices", "ACC-1|2026-11"): month}, expected=0, position=1)
        assert views.get("invoices", "ACC-1|2026-11") == month
    conninfo = parse_store_url(postgres_url).postgres
    assert conninfo is not None
    with psycopg.connect(conninfo.conninfo(), autocommit=True) as db:
        row = db.execute(
            f"SELECT pg_column_compression(doc), length(doc) FROM {VIEW_TABLE}"
        ).fetchone()
    assert row is not None and row[0] == "lz4" and row[1] > 2000


# Text beyond ASCII, as labels and descriptions may hold: one character of Latin-1 and one not.
SPELLED = {"description": "Café roaming", "label": "Zürich pack", "sign": "€"}


@pytest.mark.parametrize("encoding", ["UTF8", "LATIN1"])
def test_documents_keep_their_text_in_the_database_s_encoding(
    postgres_server: str, encoding: str
) -> None:
    """A document's text beyond ASCII comes back as written, from a UTF-8 database and from
    one in another encoding. (Sending documents as orjson's UTF-8 bytes, to spare a decode,
    broke the second; it saved nothing measurable, docs/PERFORMANCE.md round 13.)"""
    doc = SPELLED if encoding == "UTF8" else {k: v for k, v in SPELLED.items() if k != "sign"}
    options = f"ENCODING '{encoding}' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'"
    with scratch_database(postgres_server, f"ledger_test_{encoding.lower()}", options) as url:
        with PostgresViewStore(url) as views:
            views.write({("invoices", "ACC-1|2026-11"): doc}, expected=0, position=1)
            assert views.get("invoices", "ACC-1|2026-11") == doc
        with psycopg.connect(url, autocommit=True) as db:
            row = db.execute(
                f"SELECT doc, position('Café' in doc) > 0 FROM {VIEW_TABLE}"
            ).fetchone()
        assert row is not None and orjson.loads(row[0]) == doc and row[1] is True
