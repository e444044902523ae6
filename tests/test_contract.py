"""The event contract (SPEC 11): docs examples, published schemas, precise reasons (G2), T1, M1."""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.contract import (
    ENVELOPE_FIELDS,
    EVENT_SPECS,
    EVENT_TYPES,
    MAX_RECORD_BYTES,
    SCHEMA_VERSION,
    FieldSpec,
    IncomingEvent,
    Kind,
    Sign,
    json_schemas,
    main,
    parse_document,
    parse_event,
    schema_text,
    write_schemas,
)
from ledger.errors import InvalidEvent
from ledger.instants import instant_text, parse_instant

ROOT = Path(__file__).resolve().parent.parent
CONTRACT_MD = ROOT / "docs" / "CONTRACT.md"
SCHEMA_DIR = ROOT / "ledger" / "schemas"

SPEC_ORDER = (
    "catalog.published",
    "account.opened",
    "number.added",
    "balance.recharged",
    "plan.purchased",
    "plan.autorenew_changed",
    "plan.changed",
    "call.completed",
    "data.used",
    "package.subscribed",
    "package.unsubscribed",
    "package.changed",
    "cycle.started",
    "port_in.requested",
    "port_in.completed",
    "port_in.failed",
    "port_out.requested",
    "port_out.completed",
    "surcharge.applied",
    "account.blocked",
    "account.unblocked",
    "refund.requested",
    "adjustment.posted",
)


# ------------------------------------------------------------------------------------------
# A tiny JSON Schema checker: just the keywords the generated schemas use. Not a dependency.
# One deliberate difference from JSON Schema: "integer" means a JSON integer literal, as the
# contract does (JSON Schema would count 60.0 as an integer).
# ------------------------------------------------------------------------------------------

_TYPES: dict[str, Any] = {
    "object": lambda v: isinstance(v, dict),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: type(v) is int,
    "boolean": lambda v: isinstance(v, bool),
}
_KNOWN_KEYWORDS = {
    "$schema", "$id", "title", "description", "default", "type", "const", "enum", "pattern",
    "minLength", "maxLength", "minimum", "maximum", "properties", "required",
    "additionalProperties", "not", "if", "then", "allOf",
}  # fmt: skip


def schema_errors(schema: dict[str, Any], value: Any, where: str = "$") -> list[str]:
    unknown = set(schema) - _KNOWN_KEYWORDS
    assert not unknown, f"the mini checker does not know {unknown}"
    errors: list[str] = []
    if "type" in schema and not _TYPES[schema["type"]](value):
        return [f"{where}: not {schema['type']}"]
    if "const" in schema and not (
        value == schema["const"] and type(value) is type(schema["const"])
    ):
        errors.append(f"{where}: not const {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: not in enum")
    if isinstance(value, str):
        # ECMA-262: `$` matches only at the very end (Python's would also match before a \n).
        if "pattern" in schema and not re.search(schema["pattern"].replace("$", r"\Z"), value):
            errors.append(f"{where}: pattern {schema['pattern']} fails")
        if len(value) < schema.get("minLength", 0):
            errors.append(f"{where}: too short")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{where}: too long")
    if type(value) is int:
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{where}: below minimum")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{where}: above maximum")
    if isinstance(value, dict):
        for name in schema.get("required", []):
            if name not in value:
                errors.append(f"{where}: {name} missing")
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                errors += schema_errors(sub, value[name], f"{where}.{name}")
        assert schema.get("additionalProperties", True) is True
    if "not" in schema and not schema_errors(schema["not"], value, where):
        errors.append(f"{where}: matches 'not'")
    if "if" in schema and not schema_errors(schema["if"], value, where):
        errors += schema_errors(schema.get("then", {}), value, where)
    for sub in schema.get("allOf", []):
        errors += schema_errors(sub, value, where)
    return errors


# ------------------------------------------------------------------------------------------
# The examples in docs/CONTRACT.md
# ------------------------------------------------------------------------------------------


def doc_examples() -> list[str]:
    return re.findall(r"```json\n(.*?)```", CONTRACT_MD.read_text(encoding="utf-8"), re.S)


def example_of(kind: str) -> dict[str, Any]:
    for block in doc_examples():
        document = json.loads(block)
        if document["type"] == kind:
            return dict(document)
    raise AssertionError(f"no example of {kind}")


def reason_of(raw: bytes | str | dict[str, Any]) -> str:
    with pytest.raises(InvalidEvent) as caught:
        if isinstance(raw, dict):
            parse_document(raw)
        else:
            parse_event(raw)
    return caught.value.reason


def with_(event_type: str, /, **changes: Any) -> dict[str, Any]:
    document = example_of(event_type)
    document.update(changes)
    return document


def without(kind: str, *names: str) -> dict[str, Any]:
    document = example_of(kind)
    for name in names:
        del document[name]
    return document


def test_event_types_are_the_spec_table_in_order() -> None:
    assert EVENT_TYPES == SPEC_ORDER
    assert tuple(EVENT_SPECS) == SPEC_ORDER
    assert SCHEMA_VERSION == 1
    assert MAX_RECORD_BYTES == 2 * 1024 * 1024


def test_every_doc_example_parses_and_every_type_has_one() -> None:
    blocks = doc_examples()
    seen = []
    for block in blocks:
        event = parse_event(block)
        assert event.extra == {}, f"{event.type}: the example has a field the table lacks"
        seen.append(event.type)
    assert sorted(set(seen)) == sorted(EVENT_TYPES)


def test_every_doc_section_documents_every_field_of_its_type() -> None:
    text = CONTRACT_MD.read_text(encoding="utf-8")
    for kind, spec in EVENT_SPECS.items():
        match = re.search(rf"^### `{re.escape(kind)}`\n(.*?)(?=^### |^## |\Z)", text, re.S | re.M)
        assert match, f"docs/CONTRACT.md has no section for {kind}"
        for field in spec.fields:
            assert f"| `{field.name}` |" in match.group(1), f"{kind}: {field.name} undocumented"
    for field in ENVELOPE_FIELDS:
        assert f"| `{field.name}` |" in text


def test_every_doc_example_validates_against_its_published_schema() -> None:
    schemas = json_schemas()
    for block in doc_examples():
        document = json.loads(block)
        assert schema_errors(schemas[document["type"]], document) == []
        assert schema_errors(schemas["envelope"], document) == []


def test_every_doc_example_validates_with_jsonschema() -> None:
    import jsonschema  # a dev dependency: the published schemas must satisfy a real validator

    schemas = json_schemas()
    for block in doc_examples():
        document = json.loads(block)
        jsonschema.Draft202012Validator(schemas[document["type"]]).validate(document)


# ------------------------------------------------------------------------------------------
# The published schemas cannot drift from the table
# ------------------------------------------------------------------------------------------


def test_committed_schema_files_equal_json_schemas() -> None:
    schemas = json_schemas()
    assert set(schemas) == {"envelope", *EVENT_TYPES}
    committed = {path.stem: path for path in SCHEMA_DIR.glob("*.json")}
    assert set(committed) == set(schemas), "run: python -m ledger.contract write-schemas ..."
    for name, schema in schemas.items():
        text = committed[name].read_text(encoding="utf-8")
        assert json.loads(text) == schema, f"{name}.json is stale: regenerate the schemas"
        assert text == schema_text(schema), f"{name}.json is not in canonical form"


def test_write_schemas_and_the_command_line_write_the_committed_files(tmp_path: Path) -> None:
    written = write_schemas(tmp_path / "a")
    assert sorted(p.name for p in written) == sorted(p.name for p in SCHEMA_DIR.glob("*.json"))
    for path in written:
        text = path.read_text(encoding="utf-8")
        assert text.endswith("}\n")
        assert text == (SCHEMA_DIR / path.name).read_text(encoding="utf-8")
    assert main(["write-schemas", str(tmp_path / "b")]) == 0
    assert sorted((tmp_path / "b").iterdir()) == sorted(tmp_path / "b" / p.name for p in written)


def test_schemas_are_draft_2020_12_and_state_what_the_contract_states() -> None:
    schemas = json_schemas()
    for name, schema in schemas.items():
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["additionalProperties"] is True, name
    assert schemas["catalog.published"]["properties"]["account_id"]["const"] == "*"
    assert schemas["number.added"]["properties"]["account_id"]["not"] == {"const": "*"}
    assert schemas["envelope"]["properties"]["type"]["enum"] == list(EVENT_TYPES)
    assert schemas["data.used"]["then"] == {"required": ["country"]}
    assert schemas["plan.purchased"]["properties"]["autorenew"]["default"] is True
    assert schemas["account.opened"]["properties"]["timezone"]["default"] == "UTC"
    assert "autorenew" not in schemas["plan.purchased"]["required"]
    assert "channel" in schemas["plan.purchased"]["required"]


# ------------------------------------------------------------------------------------------
# Precise reasons (G2)
# ------------------------------------------------------------------------------------------


def test_G2_not_json() -> None:
    assert reason_of(b'{"event_id": "e1",').startswith("not JSON: ")
    assert reason_of("") == "not JSON: Expecting value: line 1 column 1 (char 0)"
    assert reason_of(b'{"a": 1} {"b": 2}').startswith("not JSON: Extra data")
    assert reason_of(b'{"amount": NaN}') == "not JSON: NaN is not a JSON number"
    assert reason_of(b'{"a": 1, "a": 2}') == "not JSON: duplicate key 'a' in one object"
    assert reason_of(b"[" * 200_000) == "not JSON: nested too deeply"
    assert reason_of(b"1" * 5000).startswith("not JSON: ")
    assert reason_of(b"\xef\xbb\xbf{}") == (  # as Notepad and Excel save "UTF-8"
        "not JSON: the record starts with a UTF-8 byte-order mark (save the file as UTF-8 "
        "without BOM)"
    )


_TEXT = st.text(alphabet=st.sampled_from('ab:" \\é\n{}[],1'), max_size=8)
_JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=6,
)


def _as_json_text(pairs: list[tuple[str, Any]], space: str, ascii_only: bool) -> bytes:
    members = (
        f"{space}{json.dumps(key, ensure_ascii=ascii_only)}{space}:{space}"
        f"{json.dumps(value, ensure_ascii=ascii_only, separators=(',', space + ':'))}"
        for key, value in pairs
    )
    return ("{" + ",".join(members) + space + "}").encode("utf-8")


def _outcome(raw: bytes | str) -> tuple[str, object]:
    try:
        return "event", parse_event(raw)
    except InvalidEvent as error:
        return "refused", error.reason


@settings(max_examples=400, deadline=None)
@given(
    kind=st.sampled_from(["call.completed", "data.used", "plan.purchased", "number.added"]),
    extra=st.lists(st.tuples(_TEXT, _JSON_VALUE), max_size=4),
    repeated=st.lists(st.integers(0, 20), max_size=2),
    space=st.sampled_from(["", " ", "\n\t "]),
    ascii_only=st.booleans(),
)
def test_G2_records_read_as_bytes_give_what_the_standard_decoder_gives(
    kind: str,
    extra: list[tuple[str, Any]],
    repeated: list[int],
    space: str,
    ascii_only: bool,
) -> None:
    # Bytes take orjson where the record is known to hold no duplicate key; text always takes
    # the standard library. Keys and values with colons, quotes and escapes, nesting, numbers
    # past 64 bits and repeated keys must not tell them apart.
    pairs = list(example_of(kind).items()) + extra
    pairs += [pairs[index % len(pairs)] for index in repeated]
    raw = _as_json_text(pairs, space, ascii_only)
    assert _outcome(raw) == _outcome(raw.decode("utf-8"))


def test_G2_a_repeated_key_is_found_whatever_the_colons_in_its_strings() -> None:
    base = example_of("number.added")
    plain = json.dumps(base)
    assert parse_event(plain.encode()).fields["msisdn"] == base["msisdn"]
    again = plain[:-1] + ', "msisdn": "+1:2"}'
    assert reason_of(again.encode()) == "not JSON: duplicate key 'msisdn' in one object"
    nested = plain[:-1] + ', "note": {"a:b": 1, "a:b": 2}}'
    assert reason_of(nested.encode()) == "not JSON: duplicate key 'a:b' in one object"
    in_list = plain[:-1] + ', "notes": [{"x": 1, "x": 2}]}'
    assert reason_of(in_list.encode()) == "not JSON: duplicate key 'x' in one object"
    # An escaped colon in the value kept must not hide the colon of the value dropped.
    escaped = plain[:-1] + ', "note": 1, "note": "\\u003a"}'
    assert reason_of(escaped.encode()) == "not JSON: duplicate key 'note' in one object"


def test_G2_not_an_object() -> None:
    assert reason_of(b"[1, 2]") == "not a JSON object, got array"
    assert reason_of(b'"call.completed"') == "not a JSON object, got string 'call.completed'"
    assert reason_of(b"null") == "not a JSON object, got null"
    with pytest.raises(InvalidEvent, match=r"^not a JSON object, got integer 7$"):
        parse_document(7)


def test_G2_not_utf8() -> None:
    raw = json.dumps(example_of("number.added")).encode().replace(b"portal", b"p\xffrtal")
    reason = reason_of(raw)
    assert reason.startswith("not UTF-8 text (")
    offset = raw.index(b"\xff")
    assert f"byte 0xff at offset {offset})" in reason


def test_G2_oversized_record_is_refused_before_decoding() -> None:
    base = json.dumps({**example_of("number.added"), "padding": ""}, separators=(",", ":"))
    at_limit = base.replace(
        '"padding":""', '"padding":"' + "x" * (MAX_RECORD_BYTES - len(base)) + '"'
    )
    assert len(at_limit.encode()) == MAX_RECORD_BYTES
    assert parse_event(at_limit.encode()).extra["padding"].startswith("x")
    over = b"\xff" * (MAX_RECORD_BYTES + 1)  # not even UTF-8: the size is checked first
    assert reason_of(over) == "record is 2097153 bytes, over the 2097152-byte limit"
    # A str is measured in UTF-8 bytes, not characters.
    wide = "é" * (MAX_RECORD_BYTES // 2 + 1)
    assert reason_of(wide) == f"record is {MAX_RECORD_BYTES + 2} bytes, over the 2097152-byte limit"


def test_G2_missing_fields_name_the_type_and_the_field() -> None:
    assert reason_of(without("number.added", "msisdn")) == "number.added: msisdn is missing"
    assert reason_of(without("call.completed", "event_id")) == "call.completed: event_id is missing"
    assert reason_of(without("call.completed", "occurred_at")) == (
        "call.completed: occurred_at is missing"
    )
    assert reason_of(without("plan.purchased", "channel")) == "plan.purchased: channel is missing"
    assert reason_of(without("data.used", "roaming")) == "data.used: roaming is missing"
    assert reason_of(without("number.added", "type")) == "type is missing"
    assert reason_of(without("number.added", "schema_version")) == "schema_version is missing"


def test_M1_money_must_be_a_decimal_string_not_a_float() -> None:
    assert reason_of(with_("balance.recharged", amount=10.5)) == (
        'balance.recharged: amount must be a decimal string such as "10.00", got number 10.5'
    )
    assert reason_of(with_("balance.recharged", amount=10)) == (
        'balance.recharged: amount must be a decimal string such as "10.00", got integer 10'
    )
    assert reason_of(with_("balance.recharged", amount="ten")) == (
        "balance.recharged: amount is not a decimal number: 'ten'"
    )
    for text in ("1e3", " 10.00", "+5", "010.00", "10.00001", "10."):
        assert "must be a plain decimal string" in reason_of(
            with_("balance.recharged", amount=text)
        )
    assert reason_of(with_("balance.recharged", amount="-5.00")) == (
        "balance.recharged: amount must be greater than 0, got '-5.00'"
    )
    assert reason_of(with_("surcharge.applied", amount="0.00")) == (
        "surcharge.applied: amount must be greater than 0, got '0.00'"
    )
    assert reason_of(with_("adjustment.posted", amount="-0.00")) == (
        "adjustment.posted: amount must not be zero, got '-0.00'"
    )
    # What breaks is the size, and the reason says so (the long one used to list the rules of
    # form it keeps, and showed its first 40 characters ending in ".0").
    assert reason_of(with_("adjustment.posted", amount="1" + "0" * 12)) == (
        "adjustment.posted: amount must be less than 1000000000000 (10^12) in size, "
        "got '1000000000000'"
    )
    assert reason_of(with_("adjustment.posted", amount="9" * 38 + ".00")) == (
        "adjustment.posted: amount must be less than 1000000000000 (10^12) in size, got a "
        "number of 38 digits before the point"
    )
    # As long, but what breaks is the form: too many decimal places, leading zeros.
    for text in ("1." + "0" * 23, "0" * 25 + "1"):
        assert "must be a plain decimal string" in reason_of(
            with_("adjustment.posted", amount=text)
        )


def test_F3_adjustments_are_signed() -> None:
    credit = parse_document(with_("adjustment.posted", amount="-12.50"))
    debit = parse_document(with_("adjustment.posted", amount="3.0001"))
    assert credit.fields["amount"] == Decimal("-12.50")
    assert debit.fields["amount"] == Decimal("3.0001")


def test_G2_wrong_types_string_bool_and_bool_int() -> None:
    assert reason_of(with_("data.used", roaming="true")) == (
        "data.used: roaming must be true or false, got string 'true'"
    )
    assert reason_of(with_("plan.autorenew_changed", enabled=1)) == (
        "plan.autorenew_changed: enabled must be true or false, got integer 1"
    )
    assert reason_of(with_("call.completed", duration_seconds=True)) == (
        "call.completed: duration_seconds must be an integer, got boolean true"
    )
    assert reason_of(with_("call.completed", duration_seconds=60.0)) == (
        "call.completed: duration_seconds must be an integer, got number 60.0"
    )
    assert reason_of(with_("data.used", bytes="1000")) == (
        "data.used: bytes must be an integer, got string '1000'"
    )
    assert reason_of(with_("number.added", msisdn=None)) == (
        "number.added: msisdn must be an E.164 number like +14155550123, got null"
    )
    assert reason_of(with_("number.added", event_id=42)) == (
        "number.added: event_id must be a string, got integer 42"
    )
    assert reason_of(with_("catalog.published", catalog=[])) == (
        "catalog.published: catalog must be a JSON object, got array"
    )
    assert reason_of(with_("account.opened", source=None)) == (
        "account.opened: source must be a string, got null"
    )


def test_G2_integer_ranges() -> None:
    assert reason_of(with_("call.completed", duration_seconds=-5)) == (
        "call.completed: duration_seconds must be an integer >= 0, got -5"
    )
    assert reason_of(with_("call.completed", duration_seconds=604_801)) == (
        "call.completed: duration_seconds must be an integer <= 604800, got 604801"
    )
    assert (
        parse_document(with_("call.completed", duration_seconds=0)).fields["duration_seconds"] == 0
    )
    assert reason_of(with_("data.used", bytes=10**13 + 1)) == (
        "data.used: bytes must be an integer <= 10000000000000, got 10000000000001"
    )
    # Read as bytes (a file, Kafka), an integer beyond 64 bits is still an integer too large,
    # not "must be an integer, got number 1e+26".
    record = json.dumps(with_("call.completed", duration_seconds=10**26)).encode()
    assert reason_of(record) == (
        f"call.completed: duration_seconds must be an integer <= 604800, got {10**26}"
    )


def test_G2_string_lengths_enums_codes() -> None:
    assert reason_of(with_("number.added", event_id="")) == (
        "number.added: event_id must be 1 to 128 characters, got 0"
    )
    assert reason_of(with_("plan.changed", plan_id="p" * 65)) == (
        "plan.changed: plan_id must be 1 to 64 characters, got 65"
    )
    assert reason_of(with_("account.blocked", reason="\ud800")) == (
        "account.blocked: reason is not valid Unicode text (a lone surrogate)"
    )
    assert reason_of(with_("plan.purchased", channel="web")) == (
        "plan.purchased: channel must be one of 'portal', 'app_store', 'google_play', got 'web'"
    )
    assert reason_of(with_("account.opened", billing_mode="Prepaid")) == (
        "account.opened: billing_mode must be one of 'prepaid', 'postpaid', got 'Prepaid'"
    )
    assert reason_of(with_("account.opened", currency="usd")) == (
        "account.opened: currency must be an ISO 4217 currency code like 'EUR', got 'usd'"
    )
    assert reason_of(with_("data.used", country="France")) == (
        "data.used: country must be an ISO 3166-1 alpha-2 country code like 'DE', got 'France'"
    )
    assert reason_of(with_("account.opened", timezone="Mars/Olympus_Mons")) == (
        "account.opened: timezone names an unknown IANA time zone: 'Mars/Olympus_Mons'"
    )
    assert reason_of(with_("account.opened", timezone="../../etc/passwd")) == (
        "account.opened: timezone is not an IANA time zone name: '../../etc/passwd'"
    )
    assert reason_of(with_("cycle.started", period="2026-13")) == (
        "cycle.started: period must be a period named YYYY-MM, got '2026-13'"
    )
    assert "period must be a period named YYYY-MM" in reason_of(
        with_("cycle.started", period="2026-04\n")
    )
    fullwidth_period = "\uff12\uff10\uff12\uff16-11"  # ASCII digits only
    assert reason_of(with_("cycle.started", period=fullwidth_period)) == (
        f"cycle.started: period must be a period named YYYY-MM, got {fullwidth_period!r}"
    )
    fullwidth_year = "\uff12\uff10\uff12\uff16-11-01T00:00:00Z"
    assert reason_of(with_("call.completed", occurred_at=fullwidth_year)) == (
        f"call.completed: occurred_at is not an RFC 3339 timestamp with an offset: "
        f"{fullwidth_year!r}"
    )


def test_long_values_are_cut_in_reasons() -> None:
    reason = reason_of(with_("number.added", msisdn="9" * 5000))
    assert reason.endswith("... (5000 characters)")
    assert len(reason) < 200
    huge_values = ("9" * 100_000, "2026-01-01T00:00:00Z" * 5000, list(range(10_000)))
    for kind, spec in EVENT_SPECS.items():
        for field in (*ENVELOPE_FIELDS, *spec.fields):
            if field.kind is Kind.OBJECT or field.name == "type":
                continue
            for value in huge_values:
                reason = reason_of(with_(kind, **{field.name: value}))
                assert len(reason) < 300, (kind, field.name, reason[:400])


def test_T1_timestamp_without_offset_is_invalid() -> None:
    assert reason_of(with_("call.completed", occurred_at="2026-03-14T09:26:53")) == (
        "call.completed: occurred_at has no UTC offset: '2026-03-14T09:26:53' "
        "(write e.g. 2026-03-14T09:26:53Z or 2026-03-14T09:26:53+02:00)"
    )
    assert reason_of(with_("call.completed", occurred_at="2026-02-30T09:00:00Z")) == (
        "call.completed: occurred_at is not a real date and time: '2026-02-30T09:00:00Z'"
    )
    assert reason_of(with_("call.completed", occurred_at=1773480413)) == (
        "call.completed: occurred_at must be an RFC 3339 timestamp string, got integer 1773480413"
    )


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        # A "forever" date: December 9999 has no next month to end its period.
        (
            {"occurred_at": "9999-12-31T00:00:00Z"},
            "occurred_at '9999-12-31T00:00:00Z' is outside the years the ledger bills in "
            "(0002 to 9998)",
        ),
        # Year 1 at +01:00 is in year 0 in UTC, which no calendar has.
        (
            {"occurred_at": "0001-01-01T00:00:00+01:00"},
            "occurred_at '0001-01-01T00:00:00+01:00' is outside the years the ledger bills in "
            "(0002 to 9998)",
        ),
    ],
)
def test_T1_an_instant_off_the_billing_calendar_is_invalid_with_the_reason(
    changes: dict[str, Any], reason: str
) -> None:
    """It used to be dead-lettered as "internal error ... ValueError: month must be in 1..12"
    once rated (or "OverflowError: date value out of range")."""
    assert reason_of(with_("call.completed", **changes)) == f"call.completed: {reason}"


def test_T1_a_period_off_the_billing_calendar_is_invalid_with_the_reason() -> None:
    for period in ("9999-12", "9999-02", "0000-01", "0001-11"):
        assert reason_of(with_("cycle.started", period=period)) == (
            f"cycle.started: period {period!r} is outside the periods the ledger bills in "
            "(0001-12 to 9999-01: those of the years 0002 to 9998 in any zone)"
        )
    # The first and last months an instant of those years falls in, in some zone: an account
    # in New York opened at 0002-01-01T00:00:00Z is billed on 0001-12, which must be named.
    for period in ("0001-12", "9999-01"):
        assert parse_document(with_("cycle.started", period=period)).fields["period"] == period


def test_T1_offsets_are_kept_and_documents_are_utc() -> None:
    event = parse_document(with_("call.completed", occurred_at="2026-03-14T09:26:53.5-04:00"))
    assert event.occurred_at.utcoffset() is not None
    assert event.occurred_at.utcoffset().total_seconds() == -4 * 3600  # type: ignore[union-attr]
    assert event.document()["occurred_at"] == "2026-03-14T13:26:53.500000Z"


def test_T1_one_instant_written_any_way_has_one_document() -> None:
    """The producer's text is kept where it is already the ledger's (round 14); written any
    other way, the same instant still reads as one event with one document."""
    written = [
        "2026-03-14T13:26:53Z",
        "2026-03-14t13:26:53.000+00:00",
        "2026-03-14 09:26:53-04:00",
        "2026-03-14T13:26:53.000000z",
    ]
    events = [parse_document(with_("call.completed", occurred_at=text)) for text in written]
    assert all(event == events[0] for event in events)
    assert {event.document()["occurred_at"] for event in events} == {"2026-03-14T13:26:53Z"}


@pytest.mark.parametrize("kind", EVENT_TYPES)
def test_a_parsed_event_is_the_instance_its_init_makes(kind: str) -> None:
    """The parser builds its events without their __init__ (round 14): each is exactly what
    the __init__ makes of the same fields, with a source and an unknown field kept aside."""
    event = parse_document({**example_of(kind), "source": "cdr-feed", "added_later": 1})
    again = IncomingEvent(**vars(event))
    assert list(vars(again)) == list(vars(event)) and vars(again) == vars(event)
    assert again == event and repr(again) == repr(event)
    assert event.extra == {"added_later": 1} and event.document() == again.document()


def test_G2_bad_e164() -> None:
    assert reason_of(with_("number.added", msisdn="555")) == (
        "number.added: msisdn must be an E.164 number like +14155550123, got '555'"
    )
    for bad in ("14155550123", "+04155550123", "+1415555012345678", "+1 415 555 0123", "+123456"):
        assert "must be an E.164 number" in reason_of(with_("call.completed", destination=bad))
    assert "E.164" in reason_of(with_("number.added", msisdn="+١٢٣٤٥٦٧٨"))  # Arabic digits
    assert "E.164" in reason_of(with_("number.added", msisdn="+14155550123\n"))
    assert "ported_msisdn must be an E.164" in reason_of(
        with_("port_in.requested", ported_msisdn="")
    )


def test_D2_roaming_without_country() -> None:
    assert reason_of(without("data.used", "country")) == (
        "data.used: country is required when roaming is true"
    )
    home = parse_document({**without("data.used", "country"), "roaming": False})
    assert "country" not in home.fields
    home_with_country = parse_document(with_("data.used", roaming=False, country="US"))
    assert home_with_country.fields["country"] == "US"


def test_G2_schema_version_must_be_1() -> None:
    assert reason_of(with_("number.added", schema_version=2)) == (
        "schema_version names unsupported version 2 (this ledger reads 1)"
    )
    assert reason_of(with_("number.added", schema_version="1")) == (
        "schema_version must be the integer 1, got string '1'"
    )
    assert reason_of(with_("number.added", schema_version=True)) == (
        "schema_version must be the integer 1, got boolean true"
    )
    # The version is read before anything else: a v2 event of an unknown type is refused as v2.
    assert reason_of(with_("number.added", schema_version=2, type="number.ported")).startswith(
        "schema_version names unsupported version 2"
    )


def test_G2_unknown_type() -> None:
    assert reason_of(with_("number.added", type="x")) == "type names unknown event type 'x'"
    assert reason_of(with_("number.added", type="Number.Added")) == (
        "type names unknown event type 'Number.Added'"
    )
    assert reason_of(with_("number.added", type=["number.added"])) == (
        "type must be a string naming an event type, got array"
    )


def test_C1_account_id_star_is_for_catalog_published_only() -> None:
    assert reason_of(with_("catalog.published", account_id="acc-1")) == (
        "catalog.published: account_id must be '*' (catalog versions are global), got 'acc-1'"
    )
    assert reason_of(with_("number.added", account_id="*")) == (
        "number.added: account_id must not be '*' (it is reserved for catalog.published)"
    )
    assert parse_document(example_of("catalog.published")).account_id == "*"


# ------------------------------------------------------------------------------------------
# Parsed values, defaults, extra fields, round trips
# ------------------------------------------------------------------------------------------


def test_fields_are_parsed_to_python_values() -> None:
    event = parse_event(json.dumps(example_of("call.completed")).encode())
    assert event.type == "call.completed"
    assert event.account_id == "acc-100234"
    assert event.schema_version == 1
    assert event.source == "mediation"
    assert dict(event.fields) == {
        "msisdn": "+14155550123",
        "destination": "+14165550188",
        "duration_seconds": 125,
        "call_id": "sw1-7c1d-0000417",
    }
    recharge = parse_event(json.dumps(example_of("balance.recharged")))
    assert recharge.fields["amount"] == Decimal("20.00")
    assert isinstance(recharge.fields["amount"], Decimal)
    catalog = parse_document(example_of("catalog.published"))
    assert catalog.fields["catalog"]["version"] == "2026-04-a"
    assert parse_document(without("number.added", "source")).source is None


def test_defaults_are_applied() -> None:
    plan = parse_document(without("plan.purchased", "autorenew"))
    assert plan.fields["autorenew"] is True
    assert plan.document()["autorenew"] is True
    assert parse_document(with_("plan.purchased", autorenew=False)).fields["autorenew"] is False
    account = parse_document(without("account.opened", "timezone"))
    assert account.fields["timezone"] == "UTC"
    surcharge = parse_document(without("surcharge.applied", "msisdn"))
    assert "msisdn" not in surcharge.fields
    assert "msisdn" not in surcharge.document()


def test_extra_fields_are_tolerated_and_kept_aside() -> None:
    document = with_("number.added", sim_iccid="8901260123456789012", meta={"batch": 7})
    event = parse_document(document)
    assert dict(event.extra) == {"sim_iccid": "8901260123456789012", "meta": {"batch": 7}}
    assert "sim_iccid" not in event.fields
    assert "sim_iccid" not in event.document()
    assert event == parse_document(example_of("number.added"))  # extra takes no part in equality
    assert parse_document(example_of("number.added")).extra == {}


def test_document_keeps_money_digits_exactly() -> None:
    for text in ("20.00", "0.0001", "7", "999999999999.9999"):
        event = parse_document(with_("balance.recharged", amount=text))
        assert event.document()["amount"] == text
    assert parse_document(with_("adjustment.posted", amount="-0.0001")).document()["amount"] == (
        "-0.0001"
    )


def test_every_doc_example_round_trips_through_document() -> None:
    for block in doc_examples():
        event = parse_event(block)
        document = event.document()
        assert set(document) <= {
            *(f.name for f in ENVELOPE_FIELDS),
            *(f.name for f in EVENT_SPECS[event.type].fields),
        }
        again = parse_event(json.dumps(document, sort_keys=True).encode())
        assert again == event
        assert again.document() == document


def test_parsing_is_fast() -> None:
    """~10 µs per typical event; this only guards against an accidental 50x slowdown."""
    raw = json.dumps(example_of("call.completed")).encode()
    start = time.perf_counter()
    for _ in range(2000):
        parse_event(raw)
    assert time.perf_counter() - start < 1.0


# ------------------------------------------------------------------------------------------
# Property tests: generated valid events from the table itself
# ------------------------------------------------------------------------------------------

_ID_TEXT = st.text(min_size=1, max_size=20)


@st.composite
def _money_text(draw: st.DrawFn, sign: Sign) -> str:
    places = draw(st.integers(min_value=0, max_value=4))
    limit = 10 ** (12 + places) - 1  # below 10^12 whatever the places
    low = 1 if sign is Sign.POSITIVE else -limit
    units = draw(st.integers(min_value=low, max_value=limit))
    if sign is not Sign.ANY and units == 0:
        units = 1
    return format(Decimal(units).scaleb(-places), "f")


def _money_strategy(sign: Sign) -> st.SearchStrategy[str]:
    return _money_text(sign)


def _value_strategy(field: FieldSpec) -> st.SearchStrategy[Any]:
    kind = field.kind
    if kind is Kind.STRING:
        return st.text(min_size=field.min_length or 0, max_size=min(field.max_length or 30, 30))
    if kind is Kind.ENUM:
        return st.sampled_from(field.choices)
    if kind is Kind.E164:
        return st.from_regex(r"\A\+[1-9][0-9]{6,14}\Z")
    if kind is Kind.MONEY:
        return _money_strategy(field.sign)
    if kind is Kind.INTEGER:
        return st.integers(min_value=field.minimum, max_value=field.maximum)
    if kind is Kind.BOOLEAN:
        return st.booleans()
    if kind is Kind.COUNTRY:
        return st.from_regex(r"\A[A-Z]{2}\Z")
    if kind is Kind.CURRENCY:
        return st.from_regex(r"\A[A-Z]{3}\Z")
    if kind is Kind.TIMEZONE:
        return st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"])
    if kind is Kind.PERIOD:
        return st.builds("{:04d}-{:02d}".format, st.integers(1970, 2100), st.integers(1, 12))
    if kind is Kind.OBJECT:
        return st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3)
    raise AssertionError(kind)


@st.composite
def valid_documents(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(EVENT_TYPES))
    spec = EVENT_SPECS[kind]
    local = draw(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1)))
    document: dict[str, Any] = {
        "event_id": draw(_ID_TEXT),
        "type": kind,
        "account_id": "*" if spec.is_global else draw(_ID_TEXT.filter(lambda a: a != "*")),
        "occurred_at": local.isoformat(timespec=draw(st.sampled_from(["seconds", "microseconds"])))
        + draw(st.sampled_from(["Z", "+02:00", "-05:30", "+00:00"])),
        "schema_version": 1,
    }
    if draw(st.booleans()):
        document["source"] = draw(_ID_TEXT)
    for field in spec.fields:
        if field.required or draw(st.booleans()):
            document[field.name] = draw(_value_strategy(field))
    if document.get("roaming") is True and "country" not in document:
        document["country"] = draw(_value_strategy(EVENT_SPECS["data.used"].fields[3]))
    return document


@settings(max_examples=300, deadline=None)
@given(valid_documents())
def test_generated_valid_events_parse_validate_and_round_trip(document: dict[str, Any]) -> None:
    event = parse_document(document)
    assert isinstance(event, IncomingEvent)
    assert schema_errors(json_schemas()[event.type], document) == []
    canonical = event.document()
    assert schema_errors(json_schemas()[event.type], canonical) == []
    assert parse_document(canonical) == event
    assert parse_event(json.dumps(canonical, sort_keys=True, ensure_ascii=False).encode()) == event
    assert parse_document(canonical).document() == canonical


@settings(max_examples=300, deadline=None)
@given(
    valid_documents(),
    st.dictionaries(st.sampled_from(["sim_iccid", "meta", "note"]), st.integers(), max_size=1),
    st.booleans(),
)
def test_a_record_read_whole_has_the_document_built_field_by_field(
    document: dict[str, Any], extra: dict[str, Any], canonical_first: bool
) -> None:
    """A record's decoded value is its document where it already is one (round 21): whatever
    the record, its document is the one built field by field from the parsed event."""
    if canonical_first:  # as the ledger writes it: often read back without a change
        document = parse_document(document).document()
    record = {**document, **extra}
    raw = json.dumps(record, ensure_ascii=False).encode()
    event = parse_event(raw)
    built_field_by_field = replace(event, decoded=None).document()
    assert event.document() == built_field_by_field == parse_document(record).document()
    if canonical_first and not extra:
        assert event.decoded is not None  # the value decoded is the document: no copy built


def test_a_document_is_the_events_own_whoever_changes_what_it_was_parsed_from() -> None:
    record = parse_document(example_of("call.completed")).document()  # as written
    from_value = parse_document(record)
    from_bytes = parse_event(json.dumps(record).encode())
    expected = from_value.document()
    record["duration_seconds"] = 1
    from_bytes.document()["duration_seconds"] = 2  # a copy: the next one is unchanged
    assert from_value.document() == from_bytes.document() == expected


_ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=4,
)
# Kinds whose schema states the whole rule (time zone, period and instant also need a real
# zone / date, which a pattern cannot say).
_EXACT_KINDS = {Kind.STRING, Kind.ENUM, Kind.E164, Kind.MONEY, Kind.INTEGER, Kind.BOOLEAN,
                Kind.COUNTRY, Kind.CURRENCY, Kind.OBJECT}  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from([k for k in EVENT_TYPES if k != "catalog.published"]),
    st.data(),
)
def test_schema_and_runtime_agree_on_any_single_field_value(kind: str, data: st.DataObject) -> None:
    spec = EVENT_SPECS[kind]
    fields = [f for f in spec.fields if f.kind in _EXACT_KINDS]
    if not fields:
        return
    field = data.draw(st.sampled_from(fields))
    value = data.draw(
        _ANY_JSON | _value_strategy(field) | st.text(alphabet="0123456789.-+e", max_size=8)
    )
    document = with_(kind, **{field.name: value})
    schema_ok = schema_errors(json_schemas()[kind], document) == []
    try:
        parse_document(document)
        runtime_ok = True
    except InvalidEvent:
        runtime_ok = False
    assert schema_ok == runtime_ok, (field.name, value)


@given(
    st.datetimes(
        min_value=datetime(2, 1, 2),  # the years the ledger bills in (T1)
        max_value=datetime(9998, 12, 30),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=9))]
        ),
    )
)
def test_T1_an_instant_is_written_as_rfc_3339_in_utc_and_reads_back_equal(
    instant: datetime,
) -> None:
    text = instant_text(instant)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?Z", text), text
    assert parse_instant(text, "occurred_at") == instant
