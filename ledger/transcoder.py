"""How stored events are serialised: the library's JSON format, written and read by orjson.

Byte for byte the format of the library's JSONTranscoder (compact, UTF-8, datetimes, UUIDs and
Decimals as {"_type_": ..., "_data_": ...}), so stores written either way read the same. The
library's transcoder walks every value in Python; this one leaves that to orjson, which was
most of the cost of storing an event and nearly all of the cost of reading one back.

orjson writes a UUID nested inside a value as plain text, so UUIDs are tagged at the top of an
event's state only; ledger events hold UUIDs nowhere else (tests/test_fast_paths.py reads back
every kind of stored event). Reading falls back to the library where a tag is nested.
"""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Mapper,
    StoredEvent,
    Transcoder,
    UUIDAsHex,
)
from eventsourcing.utils import get_topic, resolve_topic

from ledger.frozen import built

_TAG = b'"_type_"'
_DATETIME = DatetimeAsISO.name


_TWO_DIGITS = tuple(f"{number:02d}" for number in range(60))
_THREE_DIGITS = tuple(f"{number:03d}" for number in range(1000))
_MINUTE = timedelta(minutes=1)
_TAGGED_HERE = frozenset((datetime, UUID))  # LedgerTranscoder._tagged


class TimestampTexts:
    """`isoformat()` of the timestamps of events just made, which are in UTC: their minute's
    text is remembered (one minute: the events of a batch are made within it), and only the
    seconds are written. `isoformat` takes about 2 µs on the bench machines, this a third of
    that (docs/PERFORMANCE.md, round 14)."""

    def __init__(self) -> None:
        start = datetime.min.replace(tzinfo=UTC)
        # One tuple, replaced whole: threads sharing the transcoder see one minute's parts.
        self._minute: tuple[datetime, datetime, str] = (start, start, "")

    def text(self, stamp: datetime) -> str:
        if stamp.tzinfo is not UTC:
            return stamp.isoformat()
        start, end, minute = self._minute
        if not start <= stamp < end:
            start = stamp.replace(second=0, microsecond=0)
            end = start + _MINUTE if start.year < 9999 else start
            minute = start.isoformat()[:17]  # "2026-11-22T13:30:"
            self._minute = (start, end, minute)
        microsecond = stamp.microsecond
        if microsecond:
            return (
                f"{minute}{_TWO_DIGITS[stamp.second]}."
                f"{_THREE_DIGITS[microsecond // 1000]}{_THREE_DIGITS[microsecond % 1000]}+00:00"
            )
        return f"{minute}{_TWO_DIGITS[stamp.second]}+00:00"


class LedgerTranscoder(Transcoder):
    def __init__(self) -> None:
        self._library = JSONTranscoder()
        for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
            self._library.register(transcoding)
        self._timestamps = TimestampTexts()

    def encode(self, obj: Any) -> bytes:
        return self.encode_state(dict(obj)) if type(obj) is dict else self._dumps(obj)

    def encode_state(self, state: dict[str, Any]) -> bytes:
        """`encode` of an event's state that is the caller's own copy: tagged in place."""
        for key, value in state.items():
            if type(value) in _TAGGED_HERE:
                state[key] = self._tagged(value)
        return self._dumps(state)

    def _dumps(self, obj: Any) -> bytes:
        return orjson.dumps(
            obj, default=self._library._encode_obj, option=orjson.OPT_PASSTHROUGH_DATETIME
        )

    def _tagged(self, value: Any) -> Any:
        """A value at the top of an event's state, tagged as the library tags it where orjson
        would not (a UUID) or would take longer (a timestamp, TimestampTexts)."""
        kind = type(value)
        if kind is datetime:
            return {"_type_": _DATETIME, "_data_": self._timestamps.text(value)}
        if kind is UUID:
            return self._library._encode_obj(value)
        return value

    def decode(self, data: bytes) -> Any:
        tags = data.count(_TAG)
        if not tags:
            return orjson.loads(data)
        obj = orjson.loads(data)
        if type(obj) is not dict:
            return self._library.decode(data)
        if tags == 1:  # every domain event: its timestamp, and nothing else tagged
            stamp = obj.get("timestamp")
            if type(stamp) is dict and len(stamp) == 2 and stamp.get("_type_") == _DATETIME:
                obj["timestamp"] = datetime.fromisoformat(stamp["_data_"])
                return obj
        for key, value in obj.items():
            if type(value) is dict and len(value) == 2 and "_type_" in value and "_data_" in value:
                obj[key] = self._library._decode_obj(value)
                tags -= 1
        # A tag deeper down (or the text "_type_" in a value): the library walks it all.
        return obj if tags == 0 else self._library.decode(data)


class LedgerMapper(Mapper[UUID]):
    """The library's mapper, writing a stored event and reading it back in fewer steps.

    A replay or an audit maps every stored event: the event's class is looked up once per
    topic, and an event of the current class version with a UUID id (no cipher, no compressor:
    the ledger uses neither) is built directly, as the library builds it. Anything else takes
    the library's way.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._classes: dict[str, tuple[type[Any], int]] = {}
        # Topic and class version of each class written: looked up once, not once an event
        # (an absent `class_version` raised and formatted an AttributeError every time).
        self._topics: dict[type[Any], tuple[str, int]] = {}
        # The state `to_stored_event` makes is its own copy: the ledger's transcoder tags it
        # in place rather than copying it again.
        self._encode_state: Callable[[dict[str, Any]], bytes] = (
            self.transcoder.encode_state
            if isinstance(self.transcoder, LedgerTranscoder)
            else self.transcoder.encode
        )

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        """The library's `to_stored_event`, its record `built` (ledger.frozen)."""
        if self.cipher or self.compressor:
            return super().to_stored_event(domain_event)
        cls = type(domain_event)
        found = self._topics.get(cls)
        if found is None:
            found = self._topics[cls] = (get_topic(cls), getattr(cls, "class_version", 1))
        topic, class_version = found
        state = dict(vars(domain_event))
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        if class_version > 1:
            state["class_version"] = class_version
        return built(
            StoredEvent,
            {
                "originator_id": originator_id,
                "originator_version": originator_version,
                "topic": topic,
                "state": self._encode_state(state),
            },
        )

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        return self.event_of(
            stored_event.originator_id,
            stored_event.originator_version,
            stored_event.topic,
            stored_event.state,
        )

    def event_of(
        self, originator_id: UUID | str, originator_version: int, topic: str, state: bytes
    ) -> DomainEventProtocol[UUID]:
        """The domain event of a stored event given by its columns, as a row of the log holds
        them: the library's `to_domain_event` without a record built first (round 19)."""
        if self.cipher or self.compressor or type(originator_id) is not UUID:
            return self._library_event_of(originator_id, originator_version, topic, state)
        found = self._classes.get(topic)
        if found is None:
            cls = resolve_topic(topic)
            found = self._classes[topic] = (cls, getattr(cls, "class_version", 1))
        cls, class_version = found
        try:
            decoded: dict[str, Any] = self.transcoder.decode(state)
        except Exception:  # the library's way raises the library's error
            return self._library_event_of(originator_id, originator_version, topic, state)
        if type(decoded) is not dict or decoded.get("class_version", 1) != class_version:
            return self._library_event_of(originator_id, originator_version, topic, state)
        decoded.pop("class_version", None)
        decoded["originator_id"] = originator_id
        decoded["originator_version"] = originator_version
        domain_event: DomainEventProtocol[UUID] = built(cls, decoded)
        return domain_event

    def _library_event_of(
        self, originator_id: UUID | str, originator_version: int, topic: str, state: bytes
    ) -> DomainEventProtocol[UUID]:
        """The library's way: to be upcast, decrypted or decompressed, or to fail as it fails."""
        stored_event = StoredEvent(
            originator_id=originator_id,
            originator_version=originator_version,
            topic=topic,
            state=state,
        )
        return super().to_domain_event(stored_event)
