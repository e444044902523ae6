"""The ledger's columns reach PostgreSQL as the arrays psycopg itself would send: byte for byte,
and back through the real server unchanged, in the connection's encoding."""

from typing import Any
from uuid import UUID

import psycopg
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg.adapt import PyFormat, Transformer
from psycopg.types.numeric import Int8

from ledger import pg_arrays
from ledger.pg_arrays import (
    MAX_LENGTHS_REMEMBERED,
    BigintColumn,
    BooleanColumn,
    ByteaColumn,
    TextColumn,
    Utf8TextColumn,
    UuidColumn,
)

BIGINTS = st.integers(min_value=-(2**63), max_value=2**63 - 1)
# Text PostgreSQL stores: no NUL, no lone surrogates (psycopg refuses those as well, with the
# same UnicodeEncodeError). Some of it longer than the lengths remembered.
CHARACTERS = st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))
TEXTS = st.text(CHARACTERS, max_size=20) | st.builds(
    lambda head, size: head * size,
    st.text(CHARACTERS, min_size=1, max_size=2),
    st.integers(min_value=MAX_LENGTHS_REMEMBERED - 2, max_value=MAX_LENGTHS_REMEMBERED + 2),
)
COLUMNS = st.tuples(
    st.lists(st.uuids(), max_size=8),
    st.lists(BIGINTS, max_size=8),
    st.lists(TEXTS, max_size=5),
    st.lists(st.binary(max_size=40), max_size=8),
    st.lists(st.booleans(), max_size=8),
)


def _dumped(value: Any) -> bytes:
    transformer = Transformer(psycopg.adapters)
    return bytes(transformer.get_dumper(value, PyFormat.BINARY).dump(value))


@given(COLUMNS.filter(lambda columns: all(columns)))
def test_each_column_is_the_array_psycopg_would_send(columns: tuple[list[Any], ...]) -> None:
    uuids, bigints, texts, blobs, booleans = columns
    assert _dumped(UuidColumn(uuids)) == _dumped(uuids)
    assert _dumped(BigintColumn(bigints)) == _dumped([Int8(value) for value in bigints])
    assert _dumped(TextColumn(texts)) == _dumped(texts)
    assert _dumped(Utf8TextColumn(text.encode() for text in texts)) == _dumped(texts)
    assert _dumped(ByteaColumn(blobs)) == _dumped(blobs)
    assert _dumped(BooleanColumn(booleans)) == _dumped(booleans)


def test_lengths_beyond_the_limit_are_packed_and_not_remembered() -> None:
    long = "x" * (MAX_LENGTHS_REMEMBERED * 2)
    assert _dumped(TextColumn([long])) == _dumped([long])
    assert max(pg_arrays._packed_lengths) < MAX_LENGTHS_REMEMBERED


@settings(max_examples=40, deadline=None)
@given(COLUMNS)
def test_columns_come_back_from_postgresql_as_they_went(
    postgres_server: str, columns: tuple[list[Any], ...]
) -> None:
    uuids, bigints, texts, blobs, booleans = columns
    with psycopg.connect(postgres_server) as db:
        row = db.execute(
            "SELECT %b::uuid[], %b::bigint[], %b::text[], %b::bytea[], %b::boolean[], "
            "cardinality(%b::uuid[]), %b::text[]",
            (
                UuidColumn(uuids),
                BigintColumn(bigints),
                TextColumn(texts),
                ByteaColumn(blobs),
                BooleanColumn(booleans),
                UuidColumn(uuids),
                Utf8TextColumn(text.encode() for text in texts),
            ),
        ).fetchone()
    assert row is not None
    assert row[:5] == (uuids, bigints, texts, blobs, booleans)
    assert row[5] == len(uuids)
    assert row[6] == texts


def test_text_is_sent_in_the_connection_s_encoding(postgres_server: str) -> None:
    """Sent as UTF-8 to a connection that speaks LATIN1, "Café" would come back as "CafÃ©"."""
    with psycopg.connect(postgres_server) as db:
        db.execute("SET client_encoding TO 'LATIN1'")
        row = db.execute(
            "SELECT %b::text[], length((%b::text[])[1]), %b::text[]",
            (
                TextColumn(["Café", "Zürich"]),
                TextColumn(["Café"]),
                Utf8TextColumn(["Café".encode(), "Zürich".encode()]),
            ),
        ).fetchone()
    assert row == (["Café", "Zürich"], 4, ["Café", "Zürich"])


def test_unnest_reads_the_columns_side_by_side(postgres_server: str) -> None:
    """As the ledger's statements read them: row by row, each column's item in its place."""
    ids = [UUID(int=1), UUID(int=2)]
    with psycopg.connect(postgres_server) as db:
        rows = db.execute(
            "SELECT * FROM unnest(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[], "
            "%b::boolean[])",
            (
                UuidColumn(ids),
                BigintColumn([7, 2**40]),
                TextColumn(["a", "bé"]),
                ByteaColumn([b"\x00", b""]),
                BooleanColumn([True, False]),
            ),
        ).fetchall()
    assert rows == [(ids[0], 7, "a", b"\x00", True), (ids[1], 2**40, "bé", b"", False)]
