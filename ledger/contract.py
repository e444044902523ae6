"""The event contract (SPEC section 11): one declarative table, two uses.

Every incoming message is one JSON object: an envelope (``event_id``, ``type``, ``account_id``,
``occurred_at``, ``schema_version``, optional ``source``) plus the fields of its type. The table
below (:data:`EVENT_SPECS`) is the single source of truth for

* validation at runtime (:func:`parse_event`, :func:`parse_document`): hand-written checks
  driven by the table, no JSON Schema library, a few microseconds per event; and
* the published JSON Schema (:func:`json_schemas`, :func:`write_schemas`, the committed
  ``ledger/schemas/*.json``), generated from the same table so the two cannot drift.

Every refusal raises :class:`~ledger.errors.InvalidEvent` with one reason line (docs/CONTRACT.md):

* record-level problems, found before any field is read: ``record is N bytes, over the
  2097152-byte limit``, ``not UTF-8 text (...)``, ``not JSON: ...``, ``not a JSON object, got ...``;
* field problems: ``<event type>: <field> <problem>``, e.g.
  ``call.completed: duration_seconds must be an integer >= 0, got -5``. The ``<event type>: ``
  prefix is there whenever the type is known; ``schema_version`` and ``type`` are checked first
  (the version decides how everything else reads), so their reasons carry no prefix.

Regenerate the schemas with ``python -m ledger.contract write-schemas ledger/schemas``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson

from ledger.errors import InvalidEvent
from ledger.frozen import built
from ledger.instants import (
    instant_text,
    parse_instant,
    parse_period,
    written_as_instant_text,
    zone,
)
from ledger.money import parse_money

__all__ = [
    "ENVELOPE_FIELDS",
    "EVENT_SPECS",
    "EVENT_TYPES",
    "MAX_RECORD_BYTES",
    "SCHEMA_VERSION",
    "EventSpec",
    "FieldSpec",
    "IncomingEvent",
    "Kind",
    "Sign",
    "json_schemas",
    "oversized_record",
    "parse_document",
    "parse_event",
    "schema_text",
    "write_schemas",
]

SCHEMA_VERSION = 1
MAX_RECORD_BYTES = 2 * 1024 * 1024  # an explicit limit: no honest event comes near 2 MiB
GLOBAL_ACCOUNT = "*"  # the account_id of catalog.published (catalog versions are global, C1)
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


# --------------------------------------------------------------------------------------------
# Field specs
# --------------------------------------------------------------------------------------------


class Kind(StrEnum):
    """What a field holds on the wire, and what it becomes once parsed."""

    STRING = "string"  # str, with a length range (in Unicode code points, as JSON Schema counts)
    ENUM = "enum"  # str, one of a fixed set
    E164 = "e164"  # str, +<country code><number>, 7 to 15 digits
    MONEY = "money"  # decimal string -> Decimal (M1: never a JSON number)
    INTEGER = "integer"  # JSON integer (not a boolean, not 60.0) -> int
    BOOLEAN = "boolean"  # JSON true/false -> bool
    COUNTRY = "country"  # ISO 3166-1 alpha-2, upper case
    CURRENCY = "currency"  # ISO 4217 alphabetic code, upper case
    TIMEZONE = "timezone"  # IANA time zone name that this machine's tz database knows
    PERIOD = "period"  # billing period YYYY-MM (T1)
    INSTANT = "instant"  # RFC 3339 timestamp with an offset (T1) -> aware datetime
    OBJECT = "object"  # any JSON object -> dict (deep checks happen elsewhere)


class Sign(StrEnum):
    """The sign a money field may take."""

    ANY = "any"
    POSITIVE = "positive"  # > 0
    NONZERO = "nonzero"  # signed, but never 0 (a credit or a debit)


_NO_DEFAULT: Any = object()


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of the contract: its wire name, kind, constraints and documentation."""

    name: str
    kind: Kind
    description: str
    required: bool = True
    default: Any = _NO_DEFAULT  # applied when an optional field is absent
    min_length: int | None = None  # STRING
    max_length: int | None = None  # STRING
    choices: tuple[str, ...] = ()  # ENUM
    minimum: int | None = None  # INTEGER
    maximum: int | None = None  # INTEGER
    sign: Sign = Sign.ANY  # MONEY
    required_when: tuple[str, Any] | None = None  # (other field, value) that makes it required

    @property
    def has_default(self) -> bool:
        return self.default is not _NO_DEFAULT


@dataclass(frozen=True, slots=True)
class EventSpec:
    """One event type: its name, what it means, and its own fields (the envelope is shared)."""

    type: str
    description: str
    fields: tuple[FieldSpec, ...]

    @property
    def is_global(self) -> bool:
        """True when the event belongs to no account (its ``account_id`` is ``*``)."""
        return self.type == "catalog.published"


def _string(name: str, description: str, max_length: int, *, required: bool = True) -> FieldSpec:
    return FieldSpec(name, Kind.STRING, description, required, min_length=1, max_length=max_length)


def _enum(name: str, description: str, *choices: str, required: bool = True) -> FieldSpec:
    return FieldSpec(name, Kind.ENUM, description, required, choices=choices)


def _msisdn(description: str = "The account's phone number (E.164).") -> FieldSpec:
    return FieldSpec("msisdn", Kind.E164, description)


def _money(name: str, description: str, sign: Sign) -> FieldSpec:
    return FieldSpec(name, Kind.MONEY, description, sign=sign)


def _integer(name: str, description: str, minimum: int, maximum: int) -> FieldSpec:
    return FieldSpec(name, Kind.INTEGER, description, minimum=minimum, maximum=maximum)


def _reason(description: str) -> FieldSpec:
    return _string("reason", description, 500)


# --------------------------------------------------------------------------------------------
# The table (SPEC 11). Names are fixed; fields may be added, never renamed.
# --------------------------------------------------------------------------------------------

ENVELOPE_FIELDS: tuple[FieldSpec, ...] = (
    _string("event_id", "The producer's unique id of this fact: the idempotency key (G1).", 128),
    FieldSpec("type", Kind.ENUM, "The event type, one of the fixed names."),
    _string(
        "account_id",
        "The account the event belongs to (the Kafka key, G3); `*` for catalog.published.",
        128,
    ),
    FieldSpec(
        "occurred_at",
        Kind.INSTANT,
        "When it happened: RFC 3339 with an offset (T1). Decides period, bucket and catalog.",
    ),
    FieldSpec("schema_version", Kind.INTEGER, "The contract version; this ledger reads 1."),
    _string("source", "The producing system, for support and audit.", 128, required=False),
)

EVENT_SPECS: Mapping[str, EventSpec] = {
    spec.type: spec
    for spec in (
        EventSpec(
            "catalog.published",
            "A catalog version is published (C1). Global: account_id is `*`.",
            (
                FieldSpec(
                    "catalog",
                    Kind.OBJECT,
                    "The catalog version as a JSON object (checked in depth by the catalog).",
                ),
            ),
        ),
        EventSpec(
            "account.opened",
            "An account is opened with its billing mode, currency and time zone.",
            (
                _enum("billing_mode", "How the account pays.", "prepaid", "postpaid"),
                FieldSpec(
                    "currency",
                    Kind.CURRENCY,
                    "The account's one currency, ISO 4217 (M1); the catalog must price it.",
                ),
                FieldSpec(
                    "timezone",
                    Kind.TIMEZONE,
                    "IANA time zone whose calendar months are the billing periods (T1).",
                    required=False,
                    default="UTC",
                ),
            ),
        ),
        EventSpec(
            "number.added",
            "A phone number joins the account (V1).",
            (_msisdn("The new number (E.164)."),),
        ),
        EventSpec(
            "balance.recharged",
            "Money is added to the PAYG balance; it pays any debt first (V9).",
            (_money("amount", "The amount recharged, > 0.", Sign.POSITIVE),),
        ),
        EventSpec(
            "plan.purchased",
            "A voice plan is bought for a number (V2).",
            (
                _msisdn(),
                _string("plan_id", "The catalog plan id.", 64),
                _enum(
                    "channel",
                    "Where it was bought; store purchases are refunded by the store (F2).",
                    "portal",
                    "app_store",
                    "google_play",
                ),
                FieldSpec(
                    "autorenew",
                    Kind.BOOLEAN,
                    "Renew at each period start (V6).",
                    required=False,
                    default=True,
                ),
            ),
        ),
        EventSpec(
            "plan.autorenew_changed",
            "Autorenew is switched on or off; off is how a plan is cancelled (V7).",
            (_msisdn(), FieldSpec("enabled", Kind.BOOLEAN, "The new autorenew setting.")),
        ),
        EventSpec(
            "plan.changed",
            "The number's plan changes from the next period start (V8).",
            (_msisdn(), _string("plan_id", "The new plan, in force from the next period.", 64)),
        ),
        EventSpec(
            "call.completed",
            "A call record from the switch or mediation (V3, V4, V5).",
            (
                _msisdn("The calling number (E.164)."),
                FieldSpec("destination", Kind.E164, "The called number (E.164), rated by prefix."),
                _integer(
                    "duration_seconds", "Call length in seconds (at most 7 days).", 0, 604_800
                ),
                _string("call_id", "The switch's call id (duplicate detection, F1).", 128),
            ),
        ),
        EventSpec(
            "data.used",
            "A data usage record (D1, D2, D3).",
            (
                _msisdn(),
                _integer("bytes", "Bytes used by this record.", 0, 10**13),
                FieldSpec("roaming", Kind.BOOLEAN, "True when used abroad (D2)."),
                FieldSpec(
                    "country",
                    Kind.COUNTRY,
                    "The visited country (ISO 3166-1 alpha-2); required when roaming.",
                    required=False,
                    required_when=("roaming", True),
                ),
            ),
        ),
        EventSpec(
            "package.subscribed",
            "A data package is subscribed (postpaid, D4) or bought (prepaid, D7).",
            (_msisdn(), _string("package_id", "The catalog package id.", 64)),
        ),
        EventSpec(
            "package.unsubscribed",
            "The number's data package is removed (D5, D9).",
            (_msisdn(),),
        ),
        EventSpec(
            "package.changed",
            "The number moves to another data package (D6, D7).",
            (_msisdn(), _string("package_id", "The new catalog package id.", 64)),
        ),
        EventSpec(
            "cycle.started",
            "A billing period starts: the bill run and renewals (V6, D4, I1).",
            (FieldSpec("period", Kind.PERIOD, "The period that starts, YYYY-MM."),),
        ),
        *(
            EventSpec(
                f"port_in.{stage}",
                text,
                (
                    _msisdn("The temporary new number the account got at request (E.164)."),
                    FieldSpec("ported_msisdn", Kind.E164, "The number being ported in (E.164)."),
                ),
            )
            for stage, text in (
                ("requested", "A port-in is requested; the new number starts at once (P1)."),
                ("completed", "The port-in completes; the ported number replaces the new (P1)."),
                ("failed", "The port-in fails; the new number simply stays (P1)."),
            )
        ),
        *(
            EventSpec(f"port_out.{stage}", text, (_msisdn("The number leaving (E.164)."),))
            for stage, text in (
                ("requested", "A port-out is requested; the one-time port-out fee is due (P2)."),
                ("completed", "The number leaves the account; its billing stops (P2)."),
            )
        ),
        EventSpec(
            "surcharge.applied",
            "A carrier surcharge or TCR registration fee, charged as given (S1).",
            (
                _money("amount", "The surcharge, > 0.", Sign.POSITIVE),
                _enum("kind", "What the surcharge is.", "carrier", "tcr_registration"),
                _string("description", "The line text shown on the invoice or statement.", 500),
                FieldSpec(
                    "msisdn",
                    Kind.E164,
                    "The number it concerns, when it concerns one.",
                    required=False,
                ),
            ),
        ),
        EventSpec(
            "account.blocked",
            "The account is blocked under the acceptable-use policy (B2).",
            (_reason("Why it is blocked."),),
        ),
        EventSpec(
            "account.unblocked",
            "The block is lifted (B2).",
            (_reason("Why it is lifted."),),
        ),
        EventSpec(
            "refund.requested",
            "The customer disputes a charge (F1, F2).",
            (
                _string("charge_id", "The charge disputed.", 128),
                _reason("The customer's reason."),
            ),
        ),
        EventSpec(
            "adjustment.posted",
            "Finance posts a manual credit (negative) or debit (positive) (F3).",
            (
                _money(
                    "amount", "Signed, non-zero: negative credits, positive debits.", Sign.NONZERO
                ),
                _reason("Why."),
                _string("approved_by", "Who approved it.", 128),
            ),
        ),
    )
}

EVENT_TYPES: tuple[str, ...] = tuple(EVENT_SPECS)


# --------------------------------------------------------------------------------------------
# Patterns: the same text is the runtime check and the JSON Schema `pattern`.
# [0-9] and not \d: Python's \d also matches non-ASCII digits, ECMA-262's does not.
# --------------------------------------------------------------------------------------------

_E164 = r"^\+[1-9][0-9]{6,14}$"
_COUNTRY = r"^[A-Z]{2}$"
_CURRENCY = r"^[A-Z]{3}$"
_TIMEZONE = r"^[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*$"
_PERIOD = r"^(?!0000)[0-9]{4}-(0[1-9]|1[0-2])$"
_INSTANT = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
# Money: a plain decimal string, no exponent, no leading zeros, at most 4 decimal places (the
# ledger keeps rated amounts to 4 places, M2, so more would be silently rounded), and below
# 10^12 as money.parse_money demands.
_MONEY_BODY = r"-?(0|[1-9][0-9]{0,11})(\.[0-9]{1,4})?"
_MONEY = {
    Sign.ANY: f"^{_MONEY_BODY}$",
    Sign.POSITIVE: r"^(?!0(\.0+)?$)(0|[1-9][0-9]{0,11})(\.[0-9]{1,4})?$",
    Sign.NONZERO: rf"^(?!-?0(\.0+)?$){_MONEY_BODY}$",
}
_TIMEZONE_MAX = 64
_MONEY_MAX_CHARS = 24  # "-999999999999.9999" is 18
_is_too_large = re.compile(r"-?[1-9][0-9]{12,}(\.[0-9]{1,4})?").fullmatch


def _full(pattern: str) -> Callable[[str], re.Match[str] | None]:
    """A full-match checker for an anchored pattern (`$` alone would let a trailing \\n in)."""
    return re.compile(pattern.removeprefix("^").removesuffix("$")).fullmatch


_is_e164 = _full(_E164)
_is_country = _full(_COUNTRY)
_is_currency = _full(_CURRENCY)
_is_timezone = _full(_TIMEZONE)
_is_period = _full(_PERIOD)
_is_money = _full(_MONEY[Sign.ANY])


# --------------------------------------------------------------------------------------------
# Runtime checks
# --------------------------------------------------------------------------------------------


class _Bad(Exception):
    """A field problem; the caller adds the event type prefix."""


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


_SHOWN_CHARS = 40


def _shown(value: object) -> str:
    """A value as a reason shows it: short, unambiguous, never the whole of a huge string."""
    if isinstance(value, str):
        if len(value) > _SHOWN_CHARS:
            return f"{value[:_SHOWN_CHARS]!r}... ({len(value)} characters)"
        return repr(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return _json_type(value)


def _got(value: object) -> str:
    """'got <json type> <value>' for a value of the wrong type."""
    kind = _json_type(value)
    if kind in ("array", "object", "null"):
        return f"got {kind}"
    return f"got {kind} {_shown(value)}"


def _check_string(spec: FieldSpec, value: object) -> str:
    if type(value) is not str:
        raise _Bad(f"{spec.name} must be a string, {_got(value)}")
    lo, hi = spec.min_length or 0, spec.max_length
    if len(value) < lo or (hi is not None and len(value) > hi):
        raise _Bad(f"{spec.name} must be {lo} to {hi} characters, got {len(value)}")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _Bad(f"{spec.name} is not valid Unicode text (a lone surrogate)") from None
    return value


def _check_enum(spec: FieldSpec, value: object) -> str:
    if type(value) is not str or value not in spec.choices:
        choices = ", ".join(repr(c) for c in spec.choices)
        shown = _shown(value) if isinstance(value, str) else _got(value).removeprefix("got ")
        raise _Bad(f"{spec.name} must be one of {choices}, got {shown}")
    return value


def _check_pattern(
    matches: Callable[[str], object], like: str
) -> Callable[[FieldSpec, object], str]:
    def check(spec: FieldSpec, value: object) -> str:
        if type(value) is not str or not matches(value):
            shown = _shown(value) if isinstance(value, str) else _got(value).removeprefix("got ")
            raise _Bad(f"{spec.name} must be {like}, got {shown}")
        return value

    return check


def _check_money(spec: FieldSpec, value: object) -> Decimal:
    if type(value) is not str:
        raise _Bad(f'{spec.name} must be a decimal string such as "10.00", {_got(value)}')
    amount = None
    if len(value) <= _MONEY_MAX_CHARS:  # longer cannot be valid; keep the reason short
        try:
            amount = parse_money(value, spec.name)
        except ValueError as error:
            raise _Bad(str(error)) from None
    elif _is_too_large(value):  # a well-formed amount whose size is what breaks
        raise _Bad(
            f"{spec.name} must be less than 1000000000000 (10^12) in size, got a number "
            f"of {len(value.lstrip('-').split('.')[0])} digits before the point"
        )
    if amount is None or not _is_money(value):
        raise _Bad(
            f'{spec.name} must be a plain decimal string such as "10.00" (no exponent, no '
            f"spaces, no leading zeros, at most 4 decimal places), got {_shown(value)}"
        )
    if spec.sign is Sign.POSITIVE and amount <= 0:
        raise _Bad(f"{spec.name} must be greater than 0, got {_shown(value)}")
    if spec.sign is Sign.NONZERO and amount == 0:
        raise _Bad(f"{spec.name} must not be zero, got {_shown(value)}")
    return amount


def _check_integer(spec: FieldSpec, value: object) -> int:
    if type(value) is not int:  # bool is a subclass of int; 60.0 is a float: both refused
        raise _Bad(f"{spec.name} must be an integer, {_got(value)}")
    if spec.minimum is not None and value < spec.minimum:
        raise _Bad(f"{spec.name} must be an integer >= {spec.minimum}, got {value}")
    if spec.maximum is not None and value > spec.maximum:
        raise _Bad(f"{spec.name} must be an integer <= {spec.maximum}, got {value}")
    return value


def _check_boolean(spec: FieldSpec, value: object) -> bool:
    if type(value) is not bool:
        raise _Bad(f"{spec.name} must be true or false, {_got(value)}")
    return value


def _check_timezone(spec: FieldSpec, value: object) -> str:
    if type(value) is not str:
        raise _Bad(
            f"{spec.name} must be an IANA time zone name such as 'Europe/Berlin', {_got(value)}"
        )
    if len(value) > _TIMEZONE_MAX or not _is_timezone(value):
        raise _Bad(f"{spec.name} is not an IANA time zone name: {_shown(value)}")
    try:
        zone(value)
    except ValueError as error:
        raise _Bad(f"{spec.name} names an {error}") from None
    return value


def _check_period(spec: FieldSpec, value: object) -> str:
    if type(value) is not str or len(value) > _SHOWN_CHARS:  # keep the reason short
        shown = _shown(value) if isinstance(value, str) else _got(value).removeprefix("got ")
        raise _Bad(f"{spec.name} must be a period named YYYY-MM, got {shown}")
    try:
        period = parse_period(value, spec.name)
    except ValueError as error:
        raise _Bad(str(error)) from None
    if not _is_period(period):  # parse_period's `$` would let "2026-01\n" in
        raise _Bad(f"{spec.name} must be a period named YYYY-MM, got {_shown(value)}")
    return period


def _check_instant(spec: FieldSpec, value: object) -> datetime:
    if type(value) is not str:
        raise _Bad(f"{spec.name} must be an RFC 3339 timestamp string, {_got(value)}")
    if len(value) > _SHOWN_CHARS:  # longer cannot be valid; keep the reason short
        raise _Bad(f"{spec.name} is not an RFC 3339 timestamp with an offset: {_shown(value)}")
    try:
        return parse_instant(value, spec.name)
    except ValueError as error:
        raise _Bad(str(error)) from None


def _check_object(spec: FieldSpec, value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(f"{spec.name} must be a JSON object, {_got(value)}")
    return value


_Checker = Callable[[FieldSpec, object], Any]

_CHECKERS: Mapping[Kind, _Checker] = {
    Kind.STRING: _check_string,
    Kind.ENUM: _check_enum,
    Kind.E164: _check_pattern(_is_e164, "an E.164 number like +14155550123"),
    Kind.MONEY: _check_money,
    Kind.INTEGER: _check_integer,
    Kind.BOOLEAN: _check_boolean,
    Kind.COUNTRY: _check_pattern(_is_country, "an ISO 3166-1 alpha-2 country code like 'DE'"),
    Kind.CURRENCY: _check_pattern(_is_currency, "an ISO 4217 currency code like 'EUR'"),
    Kind.TIMEZONE: _check_timezone,
    Kind.PERIOD: _check_period,
    Kind.INSTANT: _check_instant,
    Kind.OBJECT: _check_object,
}

# Precompiled per type: (spec, checker) for each field, and every name the type knows.
_PLANS: Mapping[str, tuple[tuple[tuple[FieldSpec, _Checker], ...], frozenset[str]]] = {
    name: (
        tuple((f, _CHECKERS[f.kind]) for f in spec.fields),
        frozenset(f.name for f in (*ENVELOPE_FIELDS, *spec.fields)),
    )
    for name, spec in EVENT_SPECS.items()
}
_ENVELOPE = {f.name: f for f in ENVELOPE_FIELDS}
_EVENT_ID, _ACCOUNT_ID, _SOURCE = (
    _ENVELOPE["event_id"],
    _ENVELOPE["account_id"],
    _ENVELOPE["source"],
)
_OCCURRED_AT = _ENVELOPE["occurred_at"]


# --------------------------------------------------------------------------------------------
# The parsed event
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)  # no slots: the parser builds it (ledger.frozen), a third of the cost
class IncomingEvent:
    """One valid incoming event: the envelope, parsed, and its type's own fields, parsed.

    ``fields`` holds money as Decimal, booleans, ints and strs, with defaults applied
    (``autorenew`` true, ``timezone`` "UTC"); an optional field that was absent is absent.
    ``extra`` keeps unknown top-level fields (tolerated: fields may be added); it takes no part
    in equality nor in :meth:`document`.
    """

    event_id: str
    type: str
    account_id: str
    occurred_at: datetime
    schema_version: int
    source: str | None
    fields: Mapping[str, Any]
    # instant_text(occurred_at): the producer's own text where it is already that (T1).
    occurred_at_text: str = field(compare=False, repr=False)
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    # The record as decoded, where it already is the document: no unknown field, no default
    # applied, every value as the document writes it. Most usage records are (round 21).
    decoded: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)

    def document(self) -> dict[str, Any]:
        """The canonical JSON-able dict: envelope + fields, money as decimal strings, the
        instant in UTC (instant_text). Unknown extra fields are not included. It parses back
        (parse_document) to an equal event."""
        if self.decoded is not None:
            return dict(self.decoded)
        doc: dict[str, Any] = {
            "event_id": self.event_id,
            "type": self.type,
            "account_id": self.account_id,
            "occurred_at": self.occurred_at_text,
            "schema_version": self.schema_version,
        }
        if self.source is not None:
            doc["source"] = self.source
        for name, value in self.fields.items():
            doc[name] = _as_written(value)
        return doc


def _as_written(value: object) -> object:
    """A field's parsed value as the event's document writes it: money as its digits exactly
    as parsed (format "f", never an exponent such as "1E-7"), anything else as it is."""
    return format(value, "f") if isinstance(value, Decimal) else value


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


def _object_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc = dict(pairs)
    if len(doc) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise InvalidEvent(f"not JSON: duplicate key {_shown(key)} in one object")
            seen.add(key)
    return doc


def _no_constant(name: str) -> Any:
    raise InvalidEvent(f"not JSON: {name} is not a JSON number")


_DECODER = json.JSONDecoder(object_pairs_hook=_object_pairs, parse_constant=_no_constant)


def parse_event(raw: bytes | str) -> IncomingEvent:
    """Decode one raw record (UTF-8 JSON) and validate it. Raises InvalidEvent(reason)."""
    if isinstance(raw, str):
        size = len(raw) if raw.isascii() else len(raw.encode("utf-8", "surrogatepass"))
        text = raw
    else:
        size = len(raw)
    if size > MAX_RECORD_BYTES:
        raise oversized_record(size)
    if not isinstance(raw, str):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            bad = raw[error.start : error.start + 1].hex()
            raise InvalidEvent(
                f"not UTF-8 text ({error.reason}: byte 0x{bad} at offset {error.start})"
            ) from None
    if isinstance(raw, bytes):
        doc = _decoded_fast(raw)
        if doc is not None:
            try:
                return _parse_document(doc, owned=True)
            except InvalidEvent:
                # Said as the standard library's decoding says it: orjson reads an integer
                # beyond 64 bits as a float, whose reason would name the wrong problem.
                pass
    try:
        doc = _DECODER.decode(text)
    except json.JSONDecodeError as error:
        if text.startswith("\ufeff"):  # as Windows Notepad and Excel save "UTF-8"
            raise InvalidEvent(
                "not JSON: the record starts with a UTF-8 byte-order mark (save the file as "
                "UTF-8 without BOM)"
            ) from None
        raise InvalidEvent(f"not JSON: {error}") from None
    except RecursionError:
        raise InvalidEvent("not JSON: nested too deeply") from None
    except ValueError as error:  # e.g. an integer literal with thousands of digits
        raise InvalidEvent(f"not JSON: {error}") from None
    return _parse_document(doc, owned=True)


def oversized_record(size: int, read: int | None = None) -> InvalidEvent:
    """The refusal of a record of `size` bytes, over MAX_RECORD_BYTES (G2); `read`: the bytes
    its source read of it, where the source stopped before its end."""
    assert size > MAX_RECORD_BYTES, size
    cut = "" if read is None else f" (its first {read} bytes read)"
    return InvalidEvent(f"record is {size} bytes, over the {MAX_RECORD_BYTES}-byte limit{cut}")


def _decoded_fast(raw: bytes) -> Any:
    """The record decoded by orjson, or None to take the standard library's way.

    orjson is several times as fast, but keeps the last of duplicate keys where the contract
    refuses them, and words its errors its own way. So its result is taken only where it is
    known to have no duplicate key: with no escape in the text, every colon of the record is
    in its keys, its strings or after its keys, and written out again it keeps them all but
    those of a key given twice. Anything else (an escape, bad JSON) is decoded again by the
    standard library, which says why.
    """
    # find, not `in`: `in` first tries the bytes as an integer, raising and dropping a
    # TypeError for every record.
    if raw.find(b"\\") != -1:
        return None
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return doc if orjson.dumps(doc).count(b":") == raw.count(b":") else None


def parse_document(doc: object) -> IncomingEvent:
    """Validate an already-decoded JSON value as an event. Raises InvalidEvent(reason)."""
    return _parse_document(doc, owned=False)


def _parse_document(doc: object, owned: bool) -> IncomingEvent:
    """parse_document; `owned`: the value was decoded for this event alone, which may keep it
    as its document (no one else holds it to change it)."""
    if not isinstance(doc, dict):
        raise InvalidEvent(f"not a JSON object, {_got(doc)}")
    # The version first: it decides how everything else reads. Then the type.
    version = doc.get("schema_version", _NO_DEFAULT)
    if version is _NO_DEFAULT:
        raise InvalidEvent("schema_version is missing")
    if type(version) is not int:
        raise InvalidEvent(f"schema_version must be the integer {SCHEMA_VERSION}, {_got(version)}")
    if version != SCHEMA_VERSION:
        raise InvalidEvent(
            f"schema_version names unsupported version {version} "
            f"(this ledger reads {SCHEMA_VERSION})"
        )
    kind = doc.get("type", _NO_DEFAULT)
    if kind is _NO_DEFAULT:
        raise InvalidEvent("type is missing")
    if type(kind) is not str:
        raise InvalidEvent(f"type must be a string naming an event type, {_got(kind)}")
    plan = _PLANS.get(kind)
    if plan is None:
        raise InvalidEvent(f"type names unknown event type {_shown(kind)}")
    try:
        return _parse_known(doc, kind, plan, owned)
    except _Bad as bad:
        raise InvalidEvent(f"{kind}: {bad}") from None


def _envelope_value(doc: dict[str, Any], spec: FieldSpec, checker: _Checker) -> Any:
    value = doc.get(spec.name, _NO_DEFAULT)
    if value is _NO_DEFAULT:
        raise _Bad(f"{spec.name} is missing")
    return checker(spec, value)


def _parse_known(
    doc: dict[str, Any],
    kind: str,
    plan: tuple[tuple[tuple[FieldSpec, _Checker], ...], frozenset[str]],
    owned: bool,
) -> IncomingEvent:
    checks, known = plan
    event_id = _envelope_value(doc, _EVENT_ID, _check_string)
    account_id = _envelope_value(doc, _ACCOUNT_ID, _check_string)
    if kind == "catalog.published":
        if account_id != GLOBAL_ACCOUNT:
            raise _Bad(
                f"account_id must be '*' (catalog versions are global), got {_shown(account_id)}"
            )
    elif account_id == GLOBAL_ACCOUNT:
        raise _Bad("account_id must not be '*' (it is reserved for catalog.published)")
    occurred_at = _envelope_value(doc, _OCCURRED_AT, _check_instant)
    written = doc["occurred_at"]
    occurred_at_text = written if written_as_instant_text(written) else instant_text(occurred_at)
    source = doc.get("source", _NO_DEFAULT)
    consumed = 5  # event_id, type, account_id, occurred_at, schema_version
    if source is _NO_DEFAULT:
        source = None
    else:
        source = _check_string(_SOURCE, source)
        consumed += 1

    # Whether `doc` is already the event's document (IncomingEvent.decoded).
    as_written = owned and occurred_at_text is written
    fields: dict[str, Any] = {}
    for spec, checker in checks:
        value = doc.get(spec.name, _NO_DEFAULT)
        if value is _NO_DEFAULT:
            if spec.required:
                raise _Bad(f"{spec.name} is missing")
            if spec.required_when is not None:
                other, when = spec.required_when
                if fields.get(other) == when and type(fields.get(other)) is type(when):
                    raise _Bad(f"{spec.name} is required when {other} is {_shown(when)}")
            if spec.has_default:
                fields[spec.name] = spec.default
                as_written = False
            continue
        checked = fields[spec.name] = checker(spec, value)
        if checked is not value and _as_written(checked) != value:
            as_written = False
        consumed += 1

    extra: dict[str, Any] = {}
    if len(doc) > consumed:  # unknown fields: tolerated, kept aside (fields may be added)
        extra = {key: value for key, value in doc.items() if key not in known}
        as_written = False
    return built(
        IncomingEvent,
        {
            "event_id": event_id,
            "type": kind,
            "account_id": account_id,
            "occurred_at": occurred_at,
            "schema_version": SCHEMA_VERSION,
            "source": source,
            "fields": fields,
            "occurred_at_text": occurred_at_text,
            "extra": extra,
            "decoded": doc if as_written else None,
        },
    )


# --------------------------------------------------------------------------------------------
# JSON Schema, generated from the same table
# --------------------------------------------------------------------------------------------


def _field_schema(spec: FieldSpec) -> dict[str, Any]:
    schema: dict[str, Any] = {"description": spec.description}
    if spec.kind is Kind.STRING:
        schema.update(type="string", minLength=spec.min_length, maxLength=spec.max_length)
    elif spec.kind is Kind.ENUM:
        schema.update(type="string", enum=list(spec.choices))
    elif spec.kind is Kind.E164:
        schema.update(type="string", pattern=_E164)
    elif spec.kind is Kind.MONEY:
        schema.update(type="string", pattern=_MONEY[spec.sign])
    elif spec.kind is Kind.INTEGER:
        schema.update(type="integer", minimum=spec.minimum, maximum=spec.maximum)
    elif spec.kind is Kind.BOOLEAN:
        schema.update(type="boolean")
    elif spec.kind is Kind.COUNTRY:
        schema.update(type="string", pattern=_COUNTRY)
    elif spec.kind is Kind.CURRENCY:
        schema.update(type="string", pattern=_CURRENCY)
    elif spec.kind is Kind.TIMEZONE:
        schema.update(type="string", pattern=_TIMEZONE, maxLength=_TIMEZONE_MAX)
    elif spec.kind is Kind.PERIOD:
        schema.update(type="string", pattern=_PERIOD)
    elif spec.kind is Kind.INSTANT:
        # No "format": "date-time": RFC 3339 lets a space stand for "T", the format assertion
        # of some validators does not; the pattern is exactly what parse_instant accepts.
        schema.update(type="string", pattern=_INSTANT)
    else:  # Kind.OBJECT
        schema.update(type="object")
    if spec.has_default:
        schema["default"] = spec.default
    return {key: value for key, value in schema.items() if value is not None}


def _envelope_properties(types: Sequence[str], account_id: dict[str, Any]) -> dict[str, Any]:
    properties = {spec.name: _field_schema(spec) for spec in ENVELOPE_FIELDS}
    properties["type"] = (
        {"description": properties["type"]["description"], "const": types[0]}
        if len(types) == 1
        else {**properties["type"], "type": "string", "enum": list(types)}
    )
    properties["account_id"] = {**properties["account_id"], **account_id}
    properties["schema_version"] = {
        "description": properties["schema_version"]["description"],
        "type": "integer",
        "const": SCHEMA_VERSION,
    }
    return properties


def _envelope_required() -> list[str]:
    return [spec.name for spec in ENVELOPE_FIELDS if spec.required]


def _event_schema(spec: EventSpec) -> dict[str, Any]:
    account_id = {"const": GLOBAL_ACCOUNT} if spec.is_global else {"not": {"const": "*"}}
    properties = _envelope_properties([spec.type], account_id)
    properties.update((f.name, _field_schema(f)) for f in spec.fields)
    schema: dict[str, Any] = {
        "$schema": SCHEMA_DIALECT,
        "$id": f"urn:telecom-ledger:event:v{SCHEMA_VERSION}:{spec.type}",
        "title": spec.type,
        "description": spec.description,
        "type": "object",
        "properties": properties,
        "required": _envelope_required() + [f.name for f in spec.fields if f.required],
        "additionalProperties": True,
    }
    conditions = [
        {
            "if": {"properties": {other: {"const": when}}, "required": [other]},
            "then": {"required": [f.name]},
        }
        for f in spec.fields
        if f.required_when is not None
        for other, when in [f.required_when]
    ]
    if len(conditions) == 1:
        schema.update(conditions[0])
    elif conditions:
        schema["allOf"] = conditions
    return schema


def json_schemas() -> dict[str, dict[str, Any]]:
    """Event type name -> its JSON Schema (draft 2020-12), plus "envelope": the shared part."""
    schemas: dict[str, dict[str, Any]] = {
        "envelope": {
            "$schema": SCHEMA_DIALECT,
            "$id": f"urn:telecom-ledger:event:v{SCHEMA_VERSION}:envelope",
            "title": "envelope",
            "description": (
                "What every event carries. Each type's schema adds its own fields; unknown "
                "fields are allowed (fields may be added, never renamed)."
            ),
            "type": "object",
            "properties": _envelope_properties(EVENT_TYPES, {}),
            "required": _envelope_required(),
            "additionalProperties": True,
        }
    }
    for name, spec in EVENT_SPECS.items():
        schemas[name] = _event_schema(spec)
    return schemas


def schema_text(schema: Mapping[str, Any]) -> str:
    """The committed text of a schema file: pretty, sorted keys, trailing newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_schemas(directory: Path) -> list[Path]:
    """Write <name>.json for every type and envelope.json; return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in json_schemas().items():
        path = directory / f"{name}.json"
        path.write_text(schema_text(schema), encoding="utf-8")
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ledger.contract", description="The event contract (SPEC 11)."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    write = commands.add_parser("write-schemas", help="write the JSON Schema files into DIR")
    write.add_argument("directory", metavar="DIR", type=Path)
    args = parser.parse_args(argv)
    for path in write_schemas(args.directory):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
