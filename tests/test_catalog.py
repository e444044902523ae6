"""The versioned catalog: format, validation, longest-prefix rates, versions in force (C1-C5)."""

from __future__ import annotations

import copy
import json
import tomllib
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.catalog import (
    MAX_RATES,
    CatalogHistory,
    CatalogVersion,
    Rate,
    default_catalog_path,
    load_catalog_file,
    load_default_catalog,
    parse_catalog,
)
from ledger.errors import InvalidCatalog, RejectedEvent

# The C5 example exactly as SPEC section 3 writes it: it must work as written.
SPEC_EXAMPLE = """
version = "2026-11-a"
effective_from = "2026-11-01T00:00:00Z"
currency = "USD"
# corrects = "2026-10-a"

[fees]
port_out = "15.00"

[data]
payg_per_mb = "0.0500"            # home data with no package (D1)
roaming_default_per_mb = "2.0000" # roaming, country not listed below (D2)
roaming_per_mb = { FR = "1.5000", GB = "1.2000" }

[[rates]]                         # PAYG voice; longest prefix wins (C3)
prefix = "+1"
country = "US"
per_minute = "0.0150"
increment_seconds = 60

[[plans]]
id = "na-500"
name = "My North America 500"
fee = "9.99"
term = "monthly"                  # or "yearly"
minutes = 500
countries = ["US", "CA"]
increment_seconds = 60

[[packages]]
id = "data-5gb"
name = "5 GB"
fee = "15.00"
data_bytes = 5000000000

[[packages]]
id = "data-unlimited"
name = "Data Unlimited"
fee = "30.00"
unlimited = true
fup_bytes = 2200000000
"""


def spec_doc() -> dict[str, Any]:
    return tomllib.loads(SPEC_EXAMPLE)


def version_doc(
    version: str,
    effective_from: str,
    *,
    currency: str = "USD",
    corrects: str | None = None,
    us_rate: str = "0.0150",
) -> dict[str, Any]:
    doc = spec_doc()
    doc["version"] = version
    doc["effective_from"] = effective_from
    doc["currency"] = currency
    doc["rates"][0]["per_minute"] = us_rate
    if corrects is not None:
        doc["corrects"] = corrects
    return doc


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def reason_of(doc: dict[str, Any]) -> str:
    with pytest.raises(InvalidCatalog) as caught:
        parse_catalog(doc)
    return caught.value.reason


@pytest.fixture(scope="module")
def default() -> CatalogVersion:
    return load_default_catalog()


# --- the shipped default catalog ----------------------------------------------------------


def test_C1_C5_default_catalog_loads(default: CatalogVersion) -> None:
    assert default_catalog_path().name == "default.toml"
    assert default_catalog_path().is_file()
    assert default.version == "2026-01-a"
    assert default.effective_from == datetime(2026, 1, 1, tzinfo=UTC)
    assert default.currency == "USD"
    assert default.corrects is None
    assert default.fees["port_out"] == Decimal("15.00")
    assert default.port_out_fee == Decimal("15.00")
    assert default.data.payg_per_mb == Decimal("0.0500")
    assert default.data.roaming_default_per_mb == Decimal("2.0000")
    assert 25 <= len(default.rates) <= 60


def test_C5_default_catalog_plans_and_packages(default: CatalogVersion) -> None:
    na = default.plan("na-500")
    assert na.name == "My North America 500"
    assert na.fee == Decimal("9.99")
    assert (na.term, na.minutes, na.increment_seconds) == ("monthly", 500, 60)
    assert na.countries == frozenset({"US", "CA"})
    assert na.covers("CA") and not na.covers("MX")
    assert default.plan("na-500-yearly").term == "yearly"
    assert default.plan("na-500-yearly").fee == Decimal("99.00")
    assert {"na-unlimited", "world-300", "india-300"} <= set(default.plans)

    five = default.package("data-5gb")
    assert (five.fee, five.data_bytes, five.unlimited, five.fup_bytes) == (
        Decimal("15.00"),
        5_000_000_000,
        False,
        None,
    )
    unlimited = default.package("data-unlimited")
    assert (unlimited.fee, unlimited.data_bytes, unlimited.unlimited, unlimited.fup_bytes) == (
        Decimal("30.00"),
        None,
        True,
        2_200_000_000,
    )
    assert {"data-1gb", "data-10gb"} <= set(default.packages)


def test_plan_and_package_lookups_raise_key_error_when_absent(default: CatalogVersion) -> None:
    with pytest.raises(KeyError):
        default.plan("no-such-plan")
    with pytest.raises(KeyError):
        default.package("no-such-package")


def test_C5_spec_example_parses_as_written() -> None:
    version = parse_catalog(spec_doc())
    assert version.version == "2026-11-a"
    assert version.rate_for("+12125550100") == Rate("+1", "US", Decimal("0.0150"), 60)
    assert version.plan("na-500").countries == frozenset({"US", "CA"})
    assert version.package("data-unlimited").fup_bytes == 2_200_000_000


# --- C3 longest prefix --------------------------------------------------------------------


def test_C3_canadian_area_code_beats_plus_one(default: CatalogVersion) -> None:
    rate = default.rate_for("+14165550123")
    assert rate is not None
    assert (rate.prefix, rate.country) == ("+1416", "CA")


def test_C3_us_number_falls_back_to_plus_one(default: CatalogVersion) -> None:
    rate = default.rate_for("+12125550123")
    assert rate is not None
    assert (rate.prefix, rate.country, rate.per_minute, rate.increment_seconds) == (
        "+1",
        "US",
        Decimal("0.0150"),
        60,
    )


def test_C3_uk_mobile_and_landline_have_different_rates(default: CatalogVersion) -> None:
    mobile = default.rate_for("+447700900123")
    landline = default.rate_for("+442079460000")
    assert mobile is not None and landline is not None
    assert (mobile.prefix, mobile.country) == ("+447", "GB")
    assert (landline.prefix, landline.country) == ("+44", "GB")
    assert mobile.per_minute != landline.per_minute


def test_C3_no_matching_prefix_is_none(default: CatalogVersion) -> None:
    assert default.rate_for("+999123456") is None
    assert default.rate_for("") is None
    assert default.rate_for("14165550123") is None  # E.164 destinations carry the "+"


def test_C3_destination_equal_to_a_prefix_matches_it(default: CatalogVersion) -> None:
    rate = default.rate_for("+1416")
    assert rate is not None and rate.prefix == "+1416"


def test_C3_default_catalog_has_other_increments(default: CatalogVersion) -> None:
    increments = {rate.increment_seconds for rate in default.rates}
    assert {1, 60} <= increments
    assert increments & {6, 30}


@settings(max_examples=200, deadline=None)
@given(
    prefixes=st.sets(
        st.text(alphabet="0123456789", min_size=1, max_size=6), min_size=1, max_size=30
    ),
    digits=st.text(alphabet="0123456789", min_size=0, max_size=12),
)
def test_C3_rate_for_equals_brute_force_longest_prefix(prefixes: set[str], digits: str) -> None:
    doc = spec_doc()
    doc["rates"] = [
        {"prefix": "+" + p, "country": "US", "per_minute": "0.0100", "increment_seconds": 60}
        for p in sorted(prefixes)
    ]
    version = parse_catalog(doc)
    destination = "+" + digits
    matching = [r for r in version.rates if destination.startswith(r.prefix)]
    expected = max(matching, key=lambda r: len(r.prefix)) if matching else None
    assert version.rate_for(destination) == expected


def test_D2_roaming_rate_is_visited_country_or_default(default: CatalogVersion) -> None:
    assert default.roaming_per_mb("FR") == Decimal("1.5000")
    assert default.roaming_per_mb("GB") == Decimal("1.2000")
    assert default.roaming_per_mb("ZW") == Decimal("2.0000")


# --- C5 round trip ------------------------------------------------------------------------


def test_C5_to_document_round_trip(default: CatalogVersion) -> None:
    document = default.to_document()
    assert parse_catalog(document) == default
    assert parse_catalog(json.loads(json.dumps(document))) == default
    assert json.dumps(document, sort_keys=True) == json.dumps(
        parse_catalog(document).to_document(), sort_keys=True
    )


def test_C5_to_document_shape_money_strings_as_given() -> None:
    doc = spec_doc()
    doc["plans"][0]["countries"] = ["US", "CA"]
    document = parse_catalog(doc).to_document()
    assert document["effective_from"] == "2026-11-01T00:00:00Z"
    assert document["fees"] == {"port_out": "15.00"}
    assert document["data"] == {
        "payg_per_mb": "0.0500",
        "roaming_default_per_mb": "2.0000",
        "roaming_per_mb": {"FR": "1.5000", "GB": "1.2000"},
    }
    assert document["rates"] == [
        {"prefix": "+1", "country": "US", "per_minute": "0.0150", "increment_seconds": 60}
    ]
    assert document["plans"][0]["fee"] == "9.99"
    assert document["plans"][0]["countries"] == ["CA", "US"]  # sorted: deterministic
    assert document["packages"] == [
        {"id": "data-5gb", "name": "5 GB", "fee": "15.00", "data_bytes": 5000000000},
        {
            "id": "data-unlimited",
            "name": "Data Unlimited",
            "fee": "30.00",
            "unlimited": True,
            "fup_bytes": 2200000000,
        },
    ]
    assert "corrects" not in document


def test_C5_to_document_money_is_fixed_point_never_scientific() -> None:
    doc = spec_doc()
    doc["rates"][0]["per_minute"] = "0.00000001"
    doc["fees"]["port_out"] = "1.5E+1"
    document = parse_catalog(doc).to_document()
    assert document["rates"][0]["per_minute"] == "0.00000001"
    assert document["fees"]["port_out"] == "15"
    assert parse_catalog(document) == parse_catalog(doc)


def test_C5_corrects_and_offsets_survive_round_trip() -> None:
    doc = version_doc("2026-11-b", "2026-11-01T02:00:00+02:00", corrects="2026-11-a")
    version = parse_catalog(doc)
    assert version.effective_from == datetime(2026, 11, 1, tzinfo=UTC)
    document = version.to_document()
    assert document["corrects"] == "2026-11-a"
    assert document["effective_from"] == "2026-11-01T00:00:00Z"
    assert parse_catalog(json.loads(json.dumps(document))) == version


def test_C5_toml_offset_datetime_is_accepted() -> None:
    doc = tomllib.loads(SPEC_EXAMPLE.replace('"2026-11-01T00:00:00Z"', "2026-11-01T00:00:00Z"))
    assert isinstance(doc["effective_from"], datetime)
    assert parse_catalog(doc).effective_from == datetime(2026, 11, 1, tzinfo=UTC)


def test_C5_unknown_keys_are_allowed() -> None:
    doc = spec_doc()
    doc["description"] = "November prices"
    doc["fees"]["number_change"] = "5.00"
    doc["rates"][0]["note"] = "mainland"
    doc["plans"][0]["sku"] = "NA500"
    version = parse_catalog(doc)
    assert version.fees["number_change"] == Decimal("5.00")


def test_C5_parse_does_not_modify_its_input() -> None:
    doc = spec_doc()
    before = copy.deepcopy(doc)
    parse_catalog(doc)
    assert doc == before


# --- validation: precise reasons ---------------------------------------------------------


def test_C5_float_money_is_refused_with_a_hint_to_quote_it() -> None:
    doc = spec_doc()
    doc["plans"][0]["fee"] = 9.99
    assert reason_of(doc) == (
        'plans[0] (na-500): fee must be a decimal string such as "10.00", got float '
        '(quote it: fee = "9.99")'
    )


def test_C5_float_money_in_toml_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "float.toml"
    path.write_text(SPEC_EXAMPLE.replace('per_minute = "0.0150"', "per_minute = 0.015"))
    with pytest.raises(InvalidCatalog) as caught:
        load_catalog_file(path)
    assert caught.value.reason == (
        f'{path}: rates[0] (+1): per_minute must be a decimal string such as "10.00", '
        'got float (quote it: per_minute = "0.015")'
    )


def test_C5_negative_and_malformed_money_are_refused() -> None:
    doc = spec_doc()
    doc["data"]["payg_per_mb"] = "-0.05"
    assert reason_of(doc) == "data.payg_per_mb must not be negative, got '-0.05'"
    doc = spec_doc()
    doc["data"]["roaming_per_mb"]["FR"] = "cheap"
    assert reason_of(doc) == "data.roaming_per_mb.FR is not a decimal number: 'cheap'"


def test_T1_naive_effective_from_is_refused() -> None:
    doc = spec_doc()
    doc["effective_from"] = "2026-11-01T00:00:00"
    assert reason_of(doc).startswith("effective_from has no UTC offset: '2026-11-01T00:00:00'")
    doc["effective_from"] = datetime(2026, 11, 1)  # a TOML local date-time
    assert reason_of(doc) == (
        "effective_from has no UTC offset: 2026-11-01T00:00:00 "
        "(write e.g. 2026-11-01T00:00:00Z or 2026-11-01T00:00:00+02:00)"
    )


def test_T1_naive_toml_datetime_in_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "naive.toml"
    path.write_text(SPEC_EXAMPLE.replace('"2026-11-01T00:00:00Z"', "2026-11-01T00:00:00"))
    with pytest.raises(InvalidCatalog, match=r"effective_from has no UTC offset"):
        load_catalog_file(path)


def test_C5_effective_from_required_and_date_only_refused() -> None:
    doc = spec_doc()
    del doc["effective_from"]
    assert reason_of(doc) == "effective_from is required"
    doc["effective_from"] = tomllib.loads("d = 2026-11-01")["d"]
    assert reason_of(doc).startswith("effective_from must be a date and time with an offset")


def test_C3_duplicate_prefix_is_refused() -> None:
    doc = spec_doc()
    doc["rates"].append(dict(doc["rates"][0], per_minute="0.0200"))
    assert reason_of(doc) == "rates[1] (+1): duplicate prefix '+1', already at rates[0]"


def test_C3_bad_prefix_country_and_increment_are_refused() -> None:
    doc = spec_doc()
    doc["rates"][0]["prefix"] = "1"
    assert reason_of(doc).startswith('rates[0] (1): prefix must be "+" and 1 to 15 digits')
    doc = spec_doc()
    doc["rates"][0]["prefix"] = "+1234567890123456"
    assert "prefix must be" in reason_of(doc)
    doc = spec_doc()
    doc["rates"][0]["country"] = "USA"
    assert reason_of(doc) == (
        "rates[0] (+1): country must be an ISO 3166 alpha-2 country code such as \"US\", got 'USA'"
    )
    doc = spec_doc()
    doc["rates"][0]["increment_seconds"] = 0
    assert reason_of(doc) == "rates[0] (+1): increment_seconds must be between 1 and 3600, got 0"
    doc["rates"][0]["increment_seconds"] = True
    assert reason_of(doc) == "rates[0] (+1): increment_seconds must be an integer, got bool"


def test_C5_bad_term_is_refused() -> None:
    doc = spec_doc()
    doc["plans"][0]["term"] = "weekly"
    assert reason_of(doc) == 'plans[0] (na-500): term must be "monthly" or "yearly", got \'weekly\''


def test_C5_plan_rules() -> None:
    doc = spec_doc()
    doc["plans"][0]["countries"] = []
    assert reason_of(doc).startswith("plans[0] (na-500): countries must be a non-empty array")
    doc["plans"][0]["countries"] = ["US", "us"]
    assert reason_of(doc).startswith("plans[0] (na-500): countries[1] must be an ISO 3166")
    doc["plans"][0]["countries"] = ["US", "US"]
    assert reason_of(doc) == "plans[0] (na-500): countries lists US twice"
    doc = spec_doc()
    doc["plans"][0]["minutes"] = -1
    assert reason_of(doc) == "plans[0] (na-500): minutes must be between 0 and 10000000, got -1"
    doc = spec_doc()
    doc["plans"].append(dict(doc["plans"][0]))
    assert reason_of(doc) == "plans[1] (na-500): duplicate id 'na-500', already at plans[0]"
    doc = spec_doc()
    del doc["plans"][0]["increment_seconds"]
    assert reason_of(doc) == "plans[0] (na-500): increment_seconds is required"


def test_D3_package_with_both_data_bytes_and_unlimited_is_refused() -> None:
    doc = spec_doc()
    doc["packages"][1]["data_bytes"] = 1_000_000_000
    assert reason_of(doc) == (
        "packages[1] (data-unlimited): an unlimited package must not have data_bytes "
        "(give fup_bytes, its fair-use threshold, instead)"
    )


def test_D3_package_shape_rules() -> None:
    doc = spec_doc()
    del doc["packages"][1]["fup_bytes"]
    assert reason_of(doc) == (
        "packages[1] (data-unlimited): an unlimited package needs fup_bytes, "
        "its fair-use threshold in bytes"
    )
    doc = spec_doc()
    del doc["packages"][0]["data_bytes"]
    assert reason_of(doc).startswith("packages[0] (data-5gb): a package needs data_bytes")
    doc = spec_doc()
    doc["packages"][0]["fup_bytes"] = 10
    assert reason_of(doc).startswith("packages[0] (data-5gb): fup_bytes applies only to")
    doc = spec_doc()
    doc["packages"][0]["data_bytes"] = 0
    assert reason_of(doc).startswith("packages[0] (data-5gb): data_bytes must be between 1 and")
    doc = spec_doc()
    doc["packages"][1]["unlimited"] = "yes"
    assert reason_of(doc) == (
        "packages[1] (data-unlimited): unlimited must be true or false, got 'yes'"
    )


def test_P2_missing_port_out_fee_is_refused() -> None:
    doc = spec_doc()
    del doc["fees"]["port_out"]
    assert reason_of(doc) == "fees.port_out is required (the one-time port-out fee, P2)"
    del doc["fees"]
    assert reason_of(doc) == "fees is required"


def test_C5_top_level_rules() -> None:
    doc = spec_doc()
    doc["currency"] = "usd"
    assert reason_of(doc).startswith("currency must be an ISO 4217 code")
    doc = spec_doc()
    doc["version"] = ""
    assert reason_of(doc) == "version must not be empty"
    doc["version"] = "v" * 65
    assert reason_of(doc) == "version must be at most 64 characters, got 65"
    doc = spec_doc()
    doc["corrects"] = doc["version"]
    assert reason_of(doc) == "corrects names this version itself ('2026-11-a')"
    doc = spec_doc()
    del doc["data"]["roaming_default_per_mb"]
    assert reason_of(doc) == "data.roaming_default_per_mb is required"
    doc = spec_doc()
    doc["rates"] = []
    assert reason_of(doc) == "rates must list at least one PAYG rate"
    doc = spec_doc()
    doc["plans"] = {"id": "x"}
    assert reason_of(doc) == "plans must be an array of tables, got table"


def test_C5_explicit_limit_on_rates() -> None:
    doc = spec_doc()
    doc["rates"] = [
        {"prefix": f"+{n}", "country": "US", "per_minute": "0.01", "increment_seconds": 60}
        for n in range(MAX_RATES + 1)
    ]
    assert reason_of(doc) == f"rates has {MAX_RATES + 1} entries; at most {MAX_RATES} are allowed"


def test_C5_toml_syntax_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('version = "2026-11-a"\ncurrency = \n')
    with pytest.raises(InvalidCatalog) as caught:
        load_catalog_file(path)
    assert caught.value.reason.startswith(f"{path}: ")
    assert "line 2" in caught.value.reason


def test_C5_missing_file_is_invalid_catalog(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(InvalidCatalog) as caught:
        load_catalog_file(path)
    assert caught.value.reason == f"{path}: no such catalog file"


def test_C5_directory_and_non_utf8_are_invalid_catalog(tmp_path: Path) -> None:
    with pytest.raises(InvalidCatalog, match="is a directory"):
        load_catalog_file(tmp_path)
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'name = "caf\xe9"\n')
    with pytest.raises(InvalidCatalog, match="not UTF-8"):
        load_catalog_file(path)


def test_C5_validation_errors_in_files_are_prefixed_with_the_path(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(SPEC_EXAMPLE.replace('term = "monthly"', 'term = "weekly"'))
    with pytest.raises(InvalidCatalog) as caught:
        load_catalog_file(str(path))
    assert caught.value.reason == (
        f'{path}: plans[0] (na-500): term must be "monthly" or "yearly", got \'weekly\''
    )


# --- C1, C2, C4: the history of published versions ----------------------------------------


def test_C2_in_force_picks_newest_at_or_before() -> None:
    history = CatalogHistory()
    jan = parse_catalog(version_doc("2026-01-a", "2026-01-01T00:00:00Z"))
    mar = parse_catalog(version_doc("2026-03-a", "2026-03-01T00:00:00Z", us_rate="0.0120"))
    feb = parse_catalog(version_doc("2026-02-a", "2026-02-01T00:00:00Z", us_rate="0.0130"))
    for version in (jan, mar, feb):  # published out of effective order
        history.add(version)
    assert history.in_force("USD", at("2026-01-15T12:00:00Z")) is jan
    assert history.in_force("USD", at("2026-02-15T12:00:00Z")) is feb
    assert history.in_force("USD", at("2027-01-01T00:00:00Z")) is mar


def test_C2_boundary_exactly_at_effective_from() -> None:
    history = CatalogHistory(
        [
            parse_catalog(version_doc("2026-01-a", "2026-01-01T00:00:00Z")),
            parse_catalog(version_doc("2026-02-a", "2026-02-01T00:00:00Z", us_rate="0.0130")),
        ]
    )
    boundary = at("2026-02-01T00:00:00Z")
    assert history.in_force("USD", boundary).version == "2026-02-a"
    assert history.in_force("USD", boundary - timedelta(microseconds=1)).version == "2026-01-a"
    # the same instant written in another offset
    paris = datetime(2026, 2, 1, 1, 0, tzinfo=timezone(timedelta(hours=1)))
    assert history.in_force("USD", paris).version == "2026-02-a"


def test_C2_none_in_force_before_the_first() -> None:
    history = CatalogHistory([parse_catalog(version_doc("2026-01-a", "2026-01-01T00:00:00Z"))])
    with pytest.raises(RejectedEvent) as caught:
        history.in_force("USD", at("2025-12-31T23:59:59Z"))
    assert caught.value.reason.startswith(
        "no catalog version in USD is in force at 2025-12-31T23:59:59Z"
    )
    assert "'2026-01-a'" in caught.value.reason


def test_C2_M1_in_force_is_per_currency() -> None:
    history = CatalogHistory(
        [
            parse_catalog(version_doc("usd-1", "2026-01-01T00:00:00Z")),
            parse_catalog(version_doc("eur-1", "2026-03-01T00:00:00Z", currency="EUR")),
        ]
    )
    assert history.currencies() == frozenset({"USD", "EUR"})
    assert history.in_force("USD", at("2026-04-01T00:00:00Z")).version == "usd-1"
    assert history.in_force("EUR", at("2026-04-01T00:00:00Z")).version == "eur-1"
    with pytest.raises(RejectedEvent) as caught:
        history.in_force("EUR", at("2026-01-01T00:00:00Z"))
    assert caught.value.reason.startswith(
        "no catalog version in EUR is in force at 2026-01-01T00:00:00Z"
    )
    with pytest.raises(RejectedEvent, match="none has been published in GBP"):
        history.in_force("GBP", at("2026-04-01T00:00:00Z"))


def test_C2_same_effective_from_later_publication_wins() -> None:
    history = CatalogHistory()
    history.add(parse_catalog(version_doc("a", "2026-01-01T00:00:00Z")))
    history.add(parse_catalog(version_doc("b", "2026-01-01T00:00:00Z", us_rate="0.0100")))
    assert history.in_force("USD", at("2026-01-01T00:00:00Z")).version == "b"


def test_C2_in_force_needs_an_aware_instant() -> None:
    history = CatalogHistory([parse_catalog(version_doc("a", "2026-01-01T00:00:00Z"))])
    with pytest.raises(ValueError):
        history.in_force("USD", datetime(2026, 2, 1))


def test_C1_history_order_get_and_len() -> None:
    a = parse_catalog(version_doc("a", "2026-02-01T00:00:00Z"))
    b = parse_catalog(version_doc("b", "2026-01-01T00:00:00Z"))
    history = CatalogHistory([a, b])
    assert len(history) == 2
    assert history.versions() == (a, b)
    assert history.get("b") is b
    assert "a" in history and "zzz" not in history
    with pytest.raises(KeyError):
        history.get("zzz")


def test_C1_identical_republish_is_a_no_op() -> None:
    history = CatalogHistory()
    history.add(parse_catalog(version_doc("a", "2026-01-01T00:00:00Z")))
    history.add(parse_catalog(version_doc("a", "2026-01-01T00:00:00Z")))
    assert len(history) == 1


def test_C1_same_version_id_with_different_content_is_refused() -> None:
    history = CatalogHistory()
    history.add(parse_catalog(version_doc("a", "2026-01-01T00:00:00Z")))
    with pytest.raises(InvalidCatalog) as caught:
        history.add(parse_catalog(version_doc("a", "2026-01-01T00:00:00Z", us_rate="0.0200")))
    assert caught.value.reason == (
        "catalog version 'a' was already published with different content"
    )
    assert len(history) == 1


def test_C4_correction_of() -> None:
    history = CatalogHistory()
    original = parse_catalog(version_doc("2026-01-a", "2026-01-01T00:00:00Z"))
    history.add(original)
    assert history.correction_of("2026-01-a") is None
    first = parse_catalog(
        version_doc("2026-01-b", "2026-01-01T00:00:00Z", corrects="2026-01-a", us_rate="0.0140")
    )
    second = parse_catalog(
        version_doc("2026-01-c", "2026-01-01T00:00:00Z", corrects="2026-01-a", us_rate="0.0130")
    )
    history.add(first)
    assert history.correction_of("2026-01-a") is first
    history.add(second)
    assert history.correction_of("2026-01-a") is second  # the newest correction
    assert history.correction_of("2026-01-b") is None
    assert history.get("2026-01-a") is original  # the original stays as it was


def test_C4_final_correction_follows_the_chain() -> None:
    history = CatalogHistory()
    history.add(parse_catalog(version_doc("a", "2026-01-01T00:00:00Z")))
    history.add(parse_catalog(version_doc("b", "2026-01-01T00:00:00Z", corrects="a")))
    history.add(parse_catalog(version_doc("c", "2026-01-01T00:00:00Z", corrects="b")))
    assert history.correction_of("a") is history.get("b")
    assert history.final_correction_of("a") is history.get("c")
    assert history.final_correction_of("c") is None


def test_C4_corrects_must_name_a_published_version_in_the_same_currency() -> None:
    history = CatalogHistory()
    with pytest.raises(InvalidCatalog) as caught:
        history.add(parse_catalog(version_doc("b", "2026-01-01T00:00:00Z", corrects="a")))
    assert caught.value.reason == ("catalog version 'b' corrects 'a', which has not been published")
    history.add(parse_catalog(version_doc("a", "2026-01-01T00:00:00Z")))
    with pytest.raises(InvalidCatalog, match="in EUR cannot correct 'a', which is in USD"):
        history.add(
            parse_catalog(version_doc("b", "2026-01-01T00:00:00Z", corrects="a", currency="EUR"))
        )
    assert len(history) == 1
