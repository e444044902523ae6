"""How stored events are serialised: the library's JSON format, written and read by orjson.

Byte for byte the format of the library's JSONTranscoder (compact, UTF-8, datetimes, UUIDs and
Decimals as {"_type_": ..., "_data_": ...}), so stores written either way read the same. The
library's transcoder walks every value in Python; this one leaves that to orjson, which was
most of the cost of storing an event and nearly all of the cost of reading one back.

orjson writes a UUID nested inside a value as plain text, so UUIDs are tagged at the top of an
event's state only; ledger events hold UUIDs nowhere else (tests/test_transcoder.py reads back
every kind of stored event). Reading falls back to the library where a tag is nested.
"""

from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Transcoder,
    UUIDAsHex,
)

_TAG = b'"_type_"'


class LedgerTranscoder(Transcoder):
    def __init__(self) -> None:
        self._library = JSONTranscoder()
        for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
            self._library.register(transcoding)

    def encode(self, obj: Any) -> bytes:
        if type(obj) is dict:
            obj = {
                key: self._library._encode_obj(value) if type(value) is UUID else value
                for key, value in obj.items()
            }
        return orjson.dumps(
            obj, default=self._library._encode_obj, option=orjson.OPT_PASSTHROUGH_DATETIME
        )

    def decode(self, data: bytes) -> Any:
        tags = data.count(_TAG)
        if not tags:
            return orjson.loads(data)
        obj = orjson.loads(data)
        if type(obj) is not dict:
            return self._library.decode(data)
        for key, value in obj.items():
            if type(value) is dict and len(value) == 2 and "_type_" in value and "_data_" in value:
                obj[key] = self._library._decode_obj(value)
                tags -= 1
        # A tag deeper down (or the text "_type_" in a value): the library walks it all.
        return obj if tags == 0 else self._library.decode(data)
