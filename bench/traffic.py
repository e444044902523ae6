"""Realistic, deterministic traffic for benchmarks: a month (or several) of a telecom operator's
events.

Accounts (prepaid and postpaid, several time zones) with one to three numbers; plans and data
packages bought early in the month; then calls and data records spread over November 2026
(most usage, as in real CDR streams), recharges, surcharges, the December bill run, December
usage, and a few bad records (garbage, unknown accounts). Each further month repeats it, with
the next period's bill run, so plans renew and invoices close. Same arguments, same bytes.
"""

import json
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from ledger.catalog import default_catalog_path, load_catalog_file
from ledger.instants import instant_text

START = datetime(2026, 11, 1, tzinfo=UTC)
FIRST_PERIOD = "2026-11"  # START's month: the first month's invoices and statements
ZONES = ("UTC", "America/New_York", "America/Los_Angeles", "Europe/London")
DESTINATIONS = (
    "+12125550100",
    "+13105550100",
    "+14165550199",
    "+16045550111",
    "+442071838750",
    "+447911123456",
    "+33142685300",
    "+919876543210",
    "+525512345678",
)
PLANS = ("na-500", "na-500-yearly")
PACKAGES = ("data-1gb", "data-5gb", "data-10gb", "data-unlimited")
ROAMING = ("CA", "MX", "GB", "FR", "DE")


def catalog_event() -> dict[str, Any]:
    version = load_catalog_file(default_catalog_path())
    return {
        "event_id": f"catalog-{version.version}",
        "type": "catalog.published",
        "account_id": "*",
        "occurred_at": instant_text(version.effective_from),
        "schema_version": 1,
        "catalog": version.to_document(),
    }


def generate(
    accounts: int, usage_events: int, seed: int = 8, months: int = 1, uuid_ids: bool = False
) -> Iterator[bytes]:
    """JSON lines (bytes, no newline): the catalog, then `months` months in time order, each
    with `usage_events` usage records and the next period's bill run. `uuid_ids`: every event
    id but the catalog's a UUID, as an upstream system makes them (36 characters, where the
    bench's own are 5 to 30), the records otherwise the same."""
    records = _records(accounts, usage_events, seed, months)
    return _with_uuid_ids(records, random.Random(seed)) if uuid_ids else records


def _with_uuid_ids(lines: Iterator[bytes], rng: random.Random) -> Iterator[bytes]:
    """The records with random (but reproducible) UUIDs for event ids; no record of the
    traffic names another's event id, so nothing else changes."""
    for line in lines:
        if not line.startswith(b'{"'):  # a bad record: as it was
            yield line
            continue
        doc = json.loads(line)
        if doc["type"] != "catalog.published":
            doc["event_id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        yield json.dumps(doc).encode()


def account_id(number: int) -> str:
    """The id of the traffic's `number`-th account."""
    return f"ACC-{number:06d}"


def _records(accounts: int, usage_events: int, seed: int, months: int) -> Iterator[bytes]:
    rng = random.Random(seed)
    yield json.dumps(catalog_event()).encode()
    setup: list[dict[str, Any]] = []
    numbers: list[tuple[str, str, str]] = []  # (account, msisdn, mode)
    for a in range(accounts):
        account = account_id(a)
        mode = "prepaid" if a % 2 == 0 else "postpaid"
        at = START + timedelta(minutes=a % 600)
        setup.append(
            _event(
                f"{account}-open",
                "account.opened",
                account,
                at,
                billing_mode=mode,
                currency="USD",
                timezone=ZONES[a % len(ZONES)],
            )
        )
        if mode == "prepaid":
            setup.append(_event(f"{account}-r0", "balance.recharged", account, at, amount="50.00"))
        for n in range(1 + a % 3):
            msisdn = f"+1415{a:06d}{n}"
            numbers.append((account, msisdn, mode))
            setup.append(_event(f"{account}-n{n}", "number.added", account, at, msisdn=msisdn))
            if rng.random() < 0.6:
                setup.append(
                    _event(
                        f"{account}-p{n}",
                        "plan.purchased",
                        account,
                        at + timedelta(minutes=1),
                        msisdn=msisdn,
                        plan_id=rng.choice(PLANS),
                        channel="portal",
                        autorenew=True,
                    )
                )
            if rng.random() < 0.5:
                setup.append(
                    _event(
                        f"{account}-d{n}",
                        "package.subscribed",
                        account,
                        at + timedelta(minutes=2),
                        msisdn=msisdn,
                        package_id=rng.choice(PACKAGES),
                    )
                )
    for doc in setup:
        yield json.dumps(doc).encode()

    for month in range(months):
        yield from _month(rng, accounts, numbers, usage_events, month)


def _month(
    rng: random.Random,
    accounts: int,
    numbers: list[tuple[str, str, str]],
    usage_events: int,
    month: int,
) -> Iterator[bytes]:
    """The `month`-th month's usage (0: November 2026), with the next period's bill run after
    90% of it. Event ids of the first month carry no month, as they did before there were
    more."""
    start, next_period = _month_start(month), _month_start(month + 1)
    length = next_period - start if month else timedelta(days=30)
    prefix = f"m{month}-" if month else ""
    period = f"{next_period.year:04d}-{next_period.month:02d}"
    bill_run_at = usage_events * 9 // 10
    for i in range(usage_events):
        if i == bill_run_at:
            for a in range(accounts):
                account = account_id(a)
                yield json.dumps(
                    _event(
                        f"{account}-cycle-{period}",
                        "cycle.started",
                        account,
                        next_period.replace(hour=5),
                        period=period,
                    )
                ).encode()
        account, msisdn, mode = numbers[rng.randrange(len(numbers))]
        at = start + length * i / usage_events + timedelta(hours=1)
        if i >= bill_run_at:
            at += timedelta(days=1)
        roll = rng.random()
        if roll < 0.55:
            doc = _event(
                f"{prefix}u{i}",
                "call.completed",
                account,
                at,
                msisdn=msisdn,
                destination=rng.choice(DESTINATIONS),
                duration_seconds=rng.randint(5, 900),
                call_id=f"{prefix}c{i}",
            )
        elif roll < 0.95:
            roaming = rng.random() < 0.05
            fields: dict[str, Any] = {"msisdn": msisdn, "bytes": rng.randint(10_000, 50_000_000)}
            fields["roaming"] = roaming
            if roaming:
                fields["country"] = rng.choice(ROAMING)
            doc = _event(f"{prefix}u{i}", "data.used", account, at, **fields)
        elif roll < 0.98 and mode == "prepaid":
            doc = _event(f"{prefix}u{i}", "balance.recharged", account, at, amount="20.00")
        elif roll < 0.999:
            doc = _event(
                f"{prefix}u{i}",
                "surcharge.applied",
                account,
                at,
                amount="0.4500",
                kind="carrier",
                description="Carrier cost recovery",
            )
        elif rng.random() < 0.5:
            yield b"{not json"
            continue
        else:
            doc = _event(f"{prefix}u{i}", "balance.recharged", "ACC-UNKNOWN", at, amount="1.00")
        yield json.dumps(doc).encode()


def _month_start(month: int) -> datetime:
    """The first instant (UTC) of the `month`-th calendar month after START's."""
    year, index = divmod(START.month - 1 + month, 12)
    return START.replace(year=START.year + year, month=index + 1)


def _event(event_id: str, type_: str, account: str, at: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": type_,
        "account_id": account,
        "occurred_at": instant_text(at),
        "schema_version": 1,
        **fields,
    }
