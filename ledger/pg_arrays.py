"""Columns of a batch sent to PostgreSQL as one binary array each, for statements that
`unnest` them.

psycopg dumps a list into an array item by item in Python: a call to the item's dumper, a
length packed and two appends each, about 0.25 µs an item on these machines. A consumer's
batch sends a dozen such arrays, a few items each per event. These columns are dumped by C
loops (`map`, `bytes.join`), in the binary layout psycopg writes and PostgreSQL reads
(`array_recv`): one dimension from 1, no NULLs. Wrap a list in the column of its element
type, as in `UuidColumn(ids)`, and pass it where the statement has `%b::uuid[]`.
"""

import struct
from collections.abc import Iterable, Iterator
from itertools import chain, repeat
from operator import attrgetter
from typing import Any, Final, Literal
from uuid import UUID

import psycopg
from psycopg import postgres
from psycopg.abc import AdaptContext, Buffer
from psycopg.adapt import Dumper
from psycopg.pq import Format

_HEAD = struct.Struct("!iiiii")  # dimensions, has NULLs, element oid, length, lower bound
_EMPTY_HEAD = struct.Struct("!iii")  # no dimensions, no NULLs, element oid
_LENGTH = struct.Struct("!i")
_BIGINT_ITEM = struct.Struct("!iq")  # a bigint's length, 8, and its value
_UUID_LENGTH = _LENGTH.pack(16)
_BOOLEAN_ITEMS = {True: _LENGTH.pack(1) + b"\x01", False: _LENGTH.pack(1) + b"\x00"}
_uuid_int = attrgetter("int")
_BIG_ENDIAN: Final[Literal["big"]] = "big"

MAX_LENGTHS_REMEMBERED = 8192


class _PackedLengths(dict[int, bytes]):
    """Item lengths as packed for an array, remembered: a lookup costs a third of a pack."""

    def __missing__(self, length: int) -> bytes:
        packed = _LENGTH.pack(length)
        if length < MAX_LENGTHS_REMEMBERED:
            self[length] = packed
        return packed


_packed_lengths = _PackedLengths()


class UuidColumn(list[UUID]):
    """UUIDs for a `%b::uuid[]` parameter."""


class BigintColumn(list[int]):
    """Integers of 64 bits for a `%b::bigint[]` parameter."""


class TextColumn(list[str]):
    """Strings for a `%b::text[]` parameter, in the connection's encoding."""


class Utf8TextColumn(list[bytes]):
    """Strings already encoded in UTF-8 (JSON as orjson writes it, say) for a `%b::text[]`
    parameter: passed as they are to a UTF-8 connection, not decoded to be encoded again."""


class ByteaColumn(list[bytes]):
    """Byte strings for a `%b::bytea[]` parameter."""


class BooleanColumn(list[bool]):
    """Booleans for a `%b::boolean[]` parameter."""


def binary_array(element_oid: int, count: int, items: Iterable[bytes]) -> bytes:
    """The binary array of `count` items, each already its length and its bytes."""
    if count == 0:
        return _EMPTY_HEAD.pack(0, 0, element_oid)
    return b"".join(chain((_HEAD.pack(1, 0, element_oid, count, 1),), items))


def _sized(values: list[bytes]) -> Iterator[bytes]:
    """Each value after its length, as an array's items of varying length are written."""
    lengths = map(_packed_lengths.__getitem__, map(len, values))
    return chain.from_iterable(zip(lengths, values, strict=True))


class _ColumnDumper(Dumper):
    format = Format.BINARY
    element: str  # the element type's name in PostgreSQL
    element_oid: int

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        info = postgres.types[cls.element]
        cls.oid = info.array_oid
        cls.element_oid = info.oid


class _UuidDumper(_ColumnDumper):
    element = "uuid"

    def dump(self, obj: list[UUID]) -> Buffer:
        values = map(int.to_bytes, map(_uuid_int, obj), repeat(16), repeat(_BIG_ENDIAN))
        # Every item is 16 bytes: the length goes before the first and between the others.
        items = (_UUID_LENGTH, _UUID_LENGTH.join(values))
        return binary_array(self.element_oid, len(obj), items)


class _BigintDumper(_ColumnDumper):
    element = "int8"

    def dump(self, obj: list[int]) -> Buffer:
        items = map(_BIGINT_ITEM.pack, repeat(8), obj)
        return binary_array(self.element_oid, len(obj), items)


class _TextDumper(_ColumnDumper):
    element = "text"

    def __init__(self, cls: type, context: AdaptContext | None = None) -> None:
        super().__init__(cls, context)
        # As psycopg's own text dumper: the connection's client encoding, UTF-8 without one.
        self._encoding = self.connection.info.encoding if self.connection else "utf-8"

    def dump(self, obj: list[str]) -> Buffer:
        if self._encoding == "utf-8":
            encoded = list(map(str.encode, obj))  # without an argument to parse: 35% fewer
        else:
            encoded = list(map(str.encode, obj, repeat(self._encoding)))
        return binary_array(self.element_oid, len(obj), _sized(encoded))


class _Utf8TextDumper(_TextDumper):
    def dump(self, obj: list[bytes]) -> Buffer:  # type: ignore[override]
        if self._encoding != "utf-8":
            return super().dump([value.decode("utf-8") for value in obj])
        return binary_array(self.element_oid, len(obj), _sized(obj))


class _ByteaDumper(_ColumnDumper):
    element = "bytea"

    def dump(self, obj: list[bytes]) -> Buffer:
        return binary_array(self.element_oid, len(obj), _sized(obj))


class _BooleanDumper(_ColumnDumper):
    element = "bool"

    def dump(self, obj: list[bool]) -> Buffer:
        return binary_array(self.element_oid, len(obj), map(_BOOLEAN_ITEMS.__getitem__, obj))


# Registered with psycopg's defaults, which every connection copies when it opens: the
# columns are the ledger's own types, so nothing else is dumped differently.
for column, dumper in (
    (UuidColumn, _UuidDumper),
    (BigintColumn, _BigintDumper),
    (TextColumn, _TextDumper),
    (Utf8TextColumn, _Utf8TextDumper),
    (ByteaColumn, _ByteaDumper),
    (BooleanColumn, _BooleanDumper),
):
    psycopg.adapters.register_dumper(column, dumper)
