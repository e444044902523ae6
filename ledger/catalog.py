"""The versioned product catalog: rates, plans, data packages and fees (C1-C5).

A catalog version is parsed from a TOML file (`load_catalog_file`) or from the JSON object
inside a `catalog.published` event (`parse_catalog`); both have the same shape (C5), documented
in docs/CATALOG.md. `CatalogVersion.to_document()` gives that shape back, deterministically, so
the log alone replays exactly (C1). `CatalogHistory` holds every published version and answers
which one is in force for a currency at an instant (C2) and which version corrects another (C4).

Nothing here does I/O except `load_catalog_file`.
"""

from __future__ import annotations

import bisect
import math
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from ledger.errors import InvalidCatalog, RejectedEvent
from ledger.instants import instant_text, parse_instant
from ledger.money import parse_money

# Explicit limits: a catalog is a product list, not a data dump.
MAX_RATES = 10_000
MAX_PLANS = 1_000
MAX_PACKAGES = 1_000
MAX_FEES = 100
MAX_ROAMING_COUNTRIES = 1_000
MAX_VERSION_LENGTH = 64
MAX_ID_LENGTH = 64
MAX_NAME_LENGTH = 200
MAX_INCREMENT_SECONDS = 3_600
MAX_PLAN_MINUTES = 10_000_000
MAX_BYTES = 10**15  # one petabyte: no package or threshold comes near it
MAX_CATALOG_FILE_BYTES = 32 * 1024 * 1024

TERMS = ("monthly", "yearly")

_T = TypeVar("_T")

_PREFIX = re.compile(r"^\+[0-9]{1,15}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")


def _money_text(amount: Decimal) -> str:
    """A catalog amount as the decimal string it was given: "0.0150" stays "0.0150".

    Fixed-point, never scientific notation ("0.00000001", not "1E-8").
    """
    return format(amount, "f")


@dataclass(frozen=True)
class Rate:
    """A PAYG voice rate for every destination that starts with `prefix` (C3)."""

    prefix: str
    country: str
    per_minute: Decimal
    increment_seconds: int

    def to_document(self) -> dict[str, Any]:
        return {
            "prefix": self.prefix,
            "country": self.country,
            "per_minute": _money_text(self.per_minute),
            "increment_seconds": self.increment_seconds,
        }


@dataclass(frozen=True)
class Plan:
    """A voice plan: `minutes` per period to the listed countries (V1-V4)."""

    id: str
    name: str
    fee: Decimal
    term: str  # "monthly" or "yearly"
    minutes: int
    countries: frozenset[str]
    increment_seconds: int

    def covers(self, country: str) -> bool:
        """Whether plan minutes pay for a call to a destination in that country (V3)."""
        return country in self.countries

    def to_document(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "fee": _money_text(self.fee),
            "term": self.term,
            "minutes": self.minutes,
            "countries": sorted(self.countries),
            "increment_seconds": self.increment_seconds,
        }


@dataclass(frozen=True)
class Package:
    """A data package: a data allowance, or unlimited with a fair-use threshold (D1-D9)."""

    id: str
    name: str
    fee: Decimal
    data_bytes: int | None
    unlimited: bool
    fup_bytes: int | None

    def to_document(self) -> dict[str, Any]:
        document: dict[str, Any] = {"id": self.id, "name": self.name, "fee": _money_text(self.fee)}
        if self.unlimited:
            document["unlimited"] = True
            document["fup_bytes"] = self.fup_bytes
        else:
            document["data_bytes"] = self.data_bytes
        return document


@dataclass(frozen=True)
class DataRates:
    """Per-MB prices for data outside a package (D1) and while roaming (D2)."""

    payg_per_mb: Decimal
    roaming_default_per_mb: Decimal
    roaming_per_mb: Mapping[str, Decimal]

    def __post_init__(self) -> None:
        object.__setattr__(self, "roaming_per_mb", MappingProxyType(dict(self.roaming_per_mb)))

    def to_document(self) -> dict[str, Any]:
        return {
            "payg_per_mb": _money_text(self.payg_per_mb),
            "roaming_default_per_mb": _money_text(self.roaming_default_per_mb),
            "roaming_per_mb": {
                c: _money_text(self.roaming_per_mb[c]) for c in sorted(self.roaming_per_mb)
            },
        }


@dataclass(frozen=True)
class CatalogVersion:
    """One published catalog version (C1). Immutable; equality compares content.

    Instances hold read-only mappings and so are not hashable; key them by `version`.
    """

    version: str
    effective_from: datetime  # aware
    currency: str
    corrects: str | None
    fees: Mapping[str, Decimal]
    data: DataRates
    rates: tuple[Rate, ...]
    plans: Mapping[str, Plan]
    packages: Mapping[str, Package]
    # Longest-prefix index (C3): prefix -> rate, and the prefix lengths present, longest first.
    _by_prefix: Mapping[str, Rate] = field(init=False, repr=False, compare=False)
    _prefix_lengths: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.effective_from.tzinfo is None:
            raise ValueError("effective_from must be timezone-aware (T1)")
        object.__setattr__(self, "rates", tuple(self.rates))
        object.__setattr__(self, "fees", MappingProxyType(dict(self.fees)))
        object.__setattr__(self, "plans", MappingProxyType(dict(self.plans)))
        object.__setattr__(self, "packages", MappingProxyType(dict(self.packages)))
        by_prefix = {rate.prefix: rate for rate in self.rates}
        object.__setattr__(self, "_by_prefix", MappingProxyType(by_prefix))
        lengths = tuple(sorted({len(prefix) for prefix in by_prefix}, reverse=True))
        object.__setattr__(self, "_prefix_lengths", lengths)

    def rate_for(self, destination: str) -> Rate | None:
        """The rate of the longest prefix that `destination` (E.164, "+...") starts with (C3).

        None when no prefix matches. Cost: one dict lookup per distinct prefix length.
        """
        for length in self._prefix_lengths:
            if length <= len(destination):
                rate = self._by_prefix.get(destination[:length])
                if rate is not None:
                    return rate
        return None

    def plan(self, plan_id: str) -> Plan:
        """The plan with that id; KeyError if this version has none."""
        return self.plans[plan_id]

    def package(self, package_id: str) -> Package:
        """The data package with that id; KeyError if this version has none."""
        return self.packages[package_id]

    def roaming_per_mb(self, country: str) -> Decimal:
        """The per-MB roaming price in the visited country, or the default roaming price (D2)."""
        return self.data.roaming_per_mb.get(country, self.data.roaming_default_per_mb)

    @property
    def port_out_fee(self) -> Decimal:
        """The mandatory one-time port-out fee (P2)."""
        return self.fees["port_out"]

    def to_document(self) -> dict[str, Any]:
        """The JSON form of this version (C5): the TOML keys, money as decimal strings.

        Deterministic: the same version always gives an equal document, and
        `parse_catalog(version.to_document()) == version`.
        """
        document: dict[str, Any] = {
            "version": self.version,
            "effective_from": instant_text(self.effective_from),
            "currency": self.currency,
        }
        if self.corrects is not None:
            document["corrects"] = self.corrects
        document["fees"] = {name: _money_text(self.fees[name]) for name in sorted(self.fees)}
        document["data"] = self.data.to_document()
        document["rates"] = [rate.to_document() for rate in self.rates]
        document["plans"] = [plan.to_document() for plan in self.plans.values()]
        document["packages"] = [package.to_document() for package in self.packages.values()]
        return document


# --------------------------------------------------------------------------------------------
# Parsing and validation


def _type_name(value: object) -> str:
    if isinstance(value, datetime):
        return "datetime"
    if isinstance(value, Mapping):
        return "table"
    if isinstance(value, list):
        return "array"
    return type(value).__name__


def _text(value: object, where: str, *, max_length: int) -> str:
    if not isinstance(value, str):
        raise InvalidCatalog(f"{where} must be a string, got {_type_name(value)}")
    if not value.strip():
        raise InvalidCatalog(f"{where} must not be empty")
    if len(value) > max_length:
        raise InvalidCatalog(f"{where} must be at most {max_length} characters, got {len(value)}")
    if _CONTROL.search(value):
        raise InvalidCatalog(f"{where} must not contain control characters: {value!r}")
    if value != value.strip():
        raise InvalidCatalog(f"{where} must not start or end with whitespace: {value!r}")
    return value


def _identifier(value: object, where: str) -> str:
    text = _text(value, where, max_length=MAX_ID_LENGTH)
    if not _ID.match(text):
        raise InvalidCatalog(
            f"{where} must be letters, digits and . _ : - (starting with a letter or digit), "
            f"got {text!r}"
        )
    return text


def _money(value: object, where: str, name: str) -> Decimal:
    label = f"{where}{name}"
    try:
        amount = parse_money(value, label)
    except ValueError as error:
        reason = str(error)
        if isinstance(value, float | int) and not isinstance(value, bool):
            if isinstance(value, float) and not math.isfinite(value):
                reason += " (quote it as a decimal string)"
            else:
                reason += f' (quote it: {name} = "{value}")'
        raise InvalidCatalog(reason) from None
    if amount.is_signed():
        raise InvalidCatalog(f"{label} must not be negative, got {value!r}")
    return amount


def _integer(value: object, where: str, *, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidCatalog(f"{where} must be an integer, got {_type_name(value)}")
    if not minimum <= value <= maximum:
        raise InvalidCatalog(f"{where} must be between {minimum} and {maximum}, got {value}")
    return value


def _country(value: object, where: str) -> str:
    if not isinstance(value, str) or not _COUNTRY.match(value):
        raise InvalidCatalog(
            f'{where} must be an ISO 3166 alpha-2 country code such as "US", got {value!r}'
        )
    return value


def _table(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidCatalog(f"{where} must be a table, got {_type_name(value)}")
    for key in value:
        if not isinstance(key, str):
            raise InvalidCatalog(f"{where} has a key that is not a string: {key!r}")
    return value


def _array(value: object, where: str, *, limit: int) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise InvalidCatalog(f"{where} must be an array of tables, got {_type_name(value)}")
    if len(value) > limit:
        raise InvalidCatalog(f"{where} has {len(value)} entries; at most {limit} are allowed")
    return list(value)


def _required(table: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in table or table[key] is None:
        raise InvalidCatalog(f"{where}{key} is required")
    return table[key]


def _effective_from(value: object) -> datetime:
    where = "effective_from"
    if value is None:
        raise InvalidCatalog(f"{where} is required")
    if isinstance(value, datetime):
        # A TOML offset date-time arrives aware; a TOML local date-time arrives naive (T1).
        if value.tzinfo is None or value.utcoffset() is None:
            shown = value.isoformat()
            raise InvalidCatalog(
                f"{where} has no UTC offset: {shown} (write e.g. {shown}Z or {shown}+02:00)"
            )
        return value.astimezone(UTC)
    if isinstance(value, date | time):
        raise InvalidCatalog(
            f"{where} must be a date and time with an offset, such as "
            f'"2026-01-01T00:00:00Z", got {_type_name(value)} {value.isoformat()}'
        )
    try:
        return parse_instant(value, where).astimezone(UTC)
    except ValueError as error:
        raise InvalidCatalog(str(error)) from None


def _entry_label(kind: str, index: int, entry: Mapping[str, Any], key: str) -> str:
    """`plans[1] (na-500): ` - the path of an entry, with its id or prefix when it has one."""
    ident = entry.get(key)
    if isinstance(ident, str) and ident and len(ident) <= MAX_ID_LENGTH:
        return f"{kind}[{index}] ({ident}): "
    return f"{kind}[{index}]: "


def _parse_rate(index: int, raw: object) -> Rate:
    entry = _table(raw, f"rates[{index}]")
    where = _entry_label("rates", index, entry, "prefix")
    prefix = _required(entry, "prefix", where)
    if not isinstance(prefix, str) or not _PREFIX.match(prefix):
        raise InvalidCatalog(
            f'{where}prefix must be "+" and 1 to 15 digits (E.164), such as "+44", got {prefix!r}'
        )
    return Rate(
        prefix=prefix,
        country=_country(_required(entry, "country", where), f"{where}country"),
        per_minute=_money(_required(entry, "per_minute", where), where, "per_minute"),
        increment_seconds=_increment_seconds(entry, where),
    )


def _increment_seconds(entry: Mapping[str, Any], where: str) -> int:
    """The billing increment of a rate or plan: whole seconds, at least 1."""
    return _integer(
        _required(entry, "increment_seconds", where),
        f"{where}increment_seconds",
        minimum=1,
        maximum=MAX_INCREMENT_SECONDS,
    )


def _parse_plan(index: int, raw: object) -> Plan:
    entry = _table(raw, f"plans[{index}]")
    where = _entry_label("plans", index, entry, "id")
    plan_id = _identifier(_required(entry, "id", where), f"{where}id")
    name = _text(_required(entry, "name", where), f"{where}name", max_length=MAX_NAME_LENGTH)
    fee = _money(_required(entry, "fee", where), where, "fee")
    term = _required(entry, "term", where)
    if term not in TERMS:
        raise InvalidCatalog(f'{where}term must be "monthly" or "yearly", got {term!r}')
    minutes = _integer(
        _required(entry, "minutes", where),
        f"{where}minutes",
        minimum=0,
        maximum=MAX_PLAN_MINUTES,
    )
    raw_countries = _required(entry, "countries", where)
    if not isinstance(raw_countries, list | tuple) or not raw_countries:
        raise InvalidCatalog(
            f'{where}countries must be a non-empty array of country codes such as ["US", "CA"]'
        )
    countries: set[str] = set()
    for position, raw_country in enumerate(raw_countries):
        country = _country(raw_country, f"{where}countries[{position}]")
        if country in countries:
            raise InvalidCatalog(f"{where}countries lists {country} twice")
        countries.add(country)
    increment = _increment_seconds(entry, where)
    return Plan(
        id=plan_id,
        name=name,
        fee=fee,
        term=str(term),
        minutes=minutes,
        countries=frozenset(countries),
        increment_seconds=increment,
    )


def _parse_package(index: int, raw: object) -> Package:
    entry = _table(raw, f"packages[{index}]")
    where = _entry_label("packages", index, entry, "id")
    package_id = _identifier(_required(entry, "id", where), f"{where}id")
    name = _text(_required(entry, "name", where), f"{where}name", max_length=MAX_NAME_LENGTH)
    fee = _money(_required(entry, "fee", where), where, "fee")
    unlimited = entry.get("unlimited", False)
    if unlimited is None:
        unlimited = False
    if not isinstance(unlimited, bool):
        raise InvalidCatalog(f"{where}unlimited must be true or false, got {unlimited!r}")
    data_bytes = entry.get("data_bytes")
    fup_bytes = entry.get("fup_bytes")
    if unlimited:
        if data_bytes is not None:
            raise InvalidCatalog(
                f"{where}an unlimited package must not have data_bytes "
                "(give fup_bytes, its fair-use threshold, instead)"
            )
        if fup_bytes is None:
            raise InvalidCatalog(
                f"{where}an unlimited package needs fup_bytes, its fair-use threshold in bytes"
            )
        return Package(
            id=package_id,
            name=name,
            fee=fee,
            data_bytes=None,
            unlimited=True,
            fup_bytes=_integer(fup_bytes, f"{where}fup_bytes", minimum=1, maximum=MAX_BYTES),
        )
    if fup_bytes is not None:
        raise InvalidCatalog(
            f"{where}fup_bytes applies only to an unlimited package (set unlimited = true)"
        )
    if data_bytes is None:
        raise InvalidCatalog(
            f"{where}a package needs data_bytes (its allowance in bytes), "
            "or unlimited = true with fup_bytes"
        )
    return Package(
        id=package_id,
        name=name,
        fee=fee,
        data_bytes=_integer(data_bytes, f"{where}data_bytes", minimum=1, maximum=MAX_BYTES),
        unlimited=False,
        fup_bytes=None,
    )


def _parse_data(raw: object) -> DataRates:
    table = _table(raw, "data")
    roaming_raw = table.get("roaming_per_mb")
    roaming: dict[str, Decimal] = {}
    if roaming_raw is not None:
        roaming_table = _table(roaming_raw, "data.roaming_per_mb")
        if len(roaming_table) > MAX_ROAMING_COUNTRIES:
            raise InvalidCatalog(
                f"data.roaming_per_mb has {len(roaming_table)} countries; "
                f"at most {MAX_ROAMING_COUNTRIES} are allowed"
            )
        for country, price in roaming_table.items():
            _country(country, "data.roaming_per_mb key")
            roaming[country] = _money(price, "data.roaming_per_mb.", country)
    return DataRates(
        payg_per_mb=_money(_required(table, "payg_per_mb", "data."), "data.", "payg_per_mb"),
        roaming_default_per_mb=_money(
            _required(table, "roaming_default_per_mb", "data."), "data.", "roaming_default_per_mb"
        ),
        roaming_per_mb=roaming,
    )


def _parse_fees(raw: object) -> dict[str, Decimal]:
    table = _table(raw, "fees")
    if len(table) > MAX_FEES:
        raise InvalidCatalog(f"fees has {len(table)} entries; at most {MAX_FEES} are allowed")
    if table.get("port_out") is None:
        raise InvalidCatalog("fees.port_out is required (the one-time port-out fee, P2)")
    fees: dict[str, Decimal] = {}
    for name, amount in table.items():
        _identifier(name, "fees key")
        fees[name] = _money(amount, "fees.", name)
    return fees


def _unique(items: list[_T], key: Callable[[_T], str], kind: str, what: str) -> dict[str, _T]:
    found: dict[str, _T] = {}
    first_at: dict[str, int] = {}
    for index, item in enumerate(items):
        name = key(item)
        if name in found:
            raise InvalidCatalog(
                f"{kind}[{index}] ({name}): duplicate {what} {name!r}, "
                f"already at {kind}[{first_at[name]}]"
            )
        found[name] = item
        first_at[name] = index
    return found


def parse_catalog(doc: Mapping[str, Any]) -> CatalogVersion:
    """Validate one catalog version (C5) from a TOML-decoded table or a `catalog.published` object.

    Raises InvalidCatalog with a path-qualified reason such as
    `plans[1] (na-500): fee must be a decimal string such as "10.00", got float (...)`.
    Keys the format does not know are allowed and ignored.
    """
    top = _table(doc, "catalog")
    version = _text(_required(top, "version", ""), "version", max_length=MAX_VERSION_LENGTH)
    effective_from = _effective_from(top.get("effective_from"))
    currency = _required(top, "currency", "")
    if not isinstance(currency, str) or not _CURRENCY.match(currency):
        raise InvalidCatalog(
            f'currency must be an ISO 4217 code of three capital letters such as "USD", '
            f"got {currency!r}"
        )
    corrects_raw = top.get("corrects")
    corrects = None
    if corrects_raw is not None:
        corrects = _text(corrects_raw, "corrects", max_length=MAX_VERSION_LENGTH)
        if corrects == version:
            raise InvalidCatalog(f"corrects names this version itself ({version!r})")
    fees = _parse_fees(_required(top, "fees", ""))
    data = _parse_data(_required(top, "data", ""))

    raw_rates = _array(_required(top, "rates", ""), "rates", limit=MAX_RATES)
    if not raw_rates:
        raise InvalidCatalog("rates must list at least one PAYG rate")
    rates = [_parse_rate(i, raw) for i, raw in enumerate(raw_rates)]
    _unique(rates, lambda rate: rate.prefix, "rates", "prefix")

    raw_plans = top.get("plans")
    raw_plans = [] if raw_plans is None else _array(raw_plans, "plans", limit=MAX_PLANS)
    plans = _unique(
        [_parse_plan(i, raw) for i, raw in enumerate(raw_plans)],
        lambda plan: plan.id,
        "plans",
        "id",
    )

    raw_packages = top.get("packages")
    raw_packages = (
        [] if raw_packages is None else _array(raw_packages, "packages", limit=MAX_PACKAGES)
    )
    packages = _unique(
        [_parse_package(i, raw) for i, raw in enumerate(raw_packages)],
        lambda package: package.id,
        "packages",
        "id",
    )

    return CatalogVersion(
        version=version,
        effective_from=effective_from,
        currency=currency,
        corrects=corrects,
        fees=fees,
        data=data,
        rates=tuple(rates),
        plans=plans,
        packages=packages,
    )


def load_catalog_file(path: str | Path) -> CatalogVersion:
    """Read and validate a catalog TOML file. Every failure is InvalidCatalog naming the file."""
    where = str(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_CATALOG_FILE_BYTES + 1)
    except FileNotFoundError:
        raise InvalidCatalog(f"{where}: no such catalog file") from None
    except IsADirectoryError:
        raise InvalidCatalog(f"{where}: is a directory, not a catalog file") from None
    except OSError as error:
        raise InvalidCatalog(f"{where}: cannot read: {error.strerror or error}") from None
    if len(raw) > MAX_CATALOG_FILE_BYTES:
        raise InvalidCatalog(
            f"{where}: larger than {MAX_CATALOG_FILE_BYTES} bytes; not a catalog file"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidCatalog(f"{where}: not UTF-8 text (byte {error.start})") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise InvalidCatalog(f"{where}: {error}") from None
    try:
        return parse_catalog(document)
    except InvalidCatalog as error:
        raise InvalidCatalog(f"{where}: {error.reason}") from None


def default_catalog_path() -> Path:
    """The catalog the project ships (ledger/catalogs/default.toml)."""
    return Path(__file__).resolve().parent / "catalogs" / "default.toml"


def load_default_catalog() -> CatalogVersion:
    """The shipped default catalog, parsed."""
    return load_catalog_file(default_catalog_path())


# --------------------------------------------------------------------------------------------
# Published versions


class CatalogHistory:
    """Every published catalog version, global to the ledger (C1), in publication order.

    Versions are per currency: `in_force` only ever considers versions in the account's currency.
    """

    def __init__(self, versions: tuple[CatalogVersion, ...] | list[CatalogVersion] = ()) -> None:
        self._versions: list[CatalogVersion] = []
        self._by_id: dict[str, CatalogVersion] = {}
        self._documents: dict[str, dict[str, Any]] = {}
        # Per currency, sorted by (effective_from, publication sequence): keys and versions.
        self._keys: dict[str, list[tuple[datetime, int]]] = {}
        self._ordered: dict[str, list[CatalogVersion]] = {}
        self._corrections: dict[str, CatalogVersion] = {}
        for version in versions:
            self.add(version)

    def add(self, version: CatalogVersion) -> None:
        """Publish a version (C1).

        The same version id again with identical content is a no-op; with different content it
        is InvalidCatalog. `corrects` must name a version already published, in the same
        currency (C4).
        """
        document = version.to_document()
        known = self._documents.get(version.version)
        if known is not None:
            if known == document:
                return
            raise InvalidCatalog(
                f"catalog version {version.version!r} was already published with different content"
            )
        if version.corrects is not None:
            corrected = self._by_id.get(version.corrects)
            if corrected is None:
                raise InvalidCatalog(
                    f"catalog version {version.version!r} corrects {version.corrects!r}, "
                    "which has not been published"
                )
            if corrected.currency != version.currency:
                raise InvalidCatalog(
                    f"catalog version {version.version!r} in {version.currency} cannot correct "
                    f"{version.corrects!r}, which is in {corrected.currency}"
                )
        sequence = len(self._versions)
        self._versions.append(version)
        self._by_id[version.version] = version
        self._documents[version.version] = document
        keys = self._keys.setdefault(version.currency, [])
        ordered = self._ordered.setdefault(version.currency, [])
        key = (version.effective_from, sequence)
        position = bisect.bisect_right(keys, key)
        keys.insert(position, key)
        ordered.insert(position, version)
        if version.corrects is not None:
            self._corrections[version.corrects] = version

    def in_force(self, currency: str, at: datetime) -> CatalogVersion:
        """The newest version in `currency` whose effective_from is at or before `at` (C2).

        Among versions with the same effective_from, the one published later wins.
        RejectedEvent when there is none.
        """
        if at.tzinfo is None:
            raise ValueError("in_force needs a timezone-aware instant (T1)")
        keys = self._keys.get(currency, [])
        position = bisect.bisect_right(keys, (at, len(self._versions)))
        if position == 0:
            reason = f"no catalog version in {currency} is in force at {instant_text(at)}"
            if keys:
                first = self._ordered[currency][0]
                reason += (
                    f" (the earliest, {first.version!r}, takes effect at "
                    f"{instant_text(first.effective_from)})"
                )
            else:
                reason += f" (none has been published in {currency})"
            raise RejectedEvent(reason)
        return self._ordered[currency][position - 1]

    def get(self, version_id: str) -> CatalogVersion:
        """The published version with that id; KeyError if none."""
        return self._by_id[version_id]

    def __contains__(self, version_id: object) -> bool:
        return version_id in self._by_id

    def currencies(self) -> frozenset[str]:
        """The currencies some published version prices in (M1)."""
        return frozenset(self._keys)

    def correction_of(self, version_id: str) -> CatalogVersion | None:
        """The newest published version that declares `corrects = version_id` (C4), or None."""
        return self._corrections.get(version_id)

    def final_correction_of(self, version_id: str) -> CatalogVersion | None:
        """Follow corrections to the end: if B corrects A and C corrects B, A's is C (C4).

        Terminates: a version can only correct one published before it.
        """
        current = self._corrections.get(version_id)
        while current is not None:
            later = self._corrections.get(current.version)
            if later is None:
                return current
            current = later
        return None

    def versions(self) -> tuple[CatalogVersion, ...]:
        """Every published version, in publication order."""
        return tuple(self._versions)

    def __len__(self) -> int:
        return len(self._versions)
