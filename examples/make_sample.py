"""Write examples/sample-month.jsonl: a realistic, deterministic month of events.

    python examples/make_sample.py > examples/sample-month.jsonl

Six accounts (prepaid and postpaid, in three time zones) through November 2026: numbers,
recharges, plan and package purchases, calls, data (home and roaming), a surcharge, a port-out,
the December bill run, and four bad records so the dead-letter file shows what support sees.
"""

import json
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ledger.catalog import default_catalog_path, load_catalog_file  # noqa: E402
from ledger.instants import instant_text  # noqa: E402

START = datetime(2026, 11, 1, tzinfo=UTC)
ACCOUNTS = [
    ("ACC-1001", "prepaid", "America/New_York", ["+14155550101", "+14155550102"]),
    ("ACC-1002", "prepaid", "America/Toronto", ["+14165550201"]),
    ("ACC-1003", "prepaid", "UTC", ["+14155550301"]),
    ("ACC-2001", "postpaid", "America/Los_Angeles", ["+13105550401", "+13105550402"]),
    ("ACC-2002", "postpaid", "UTC", ["+12125550501"]),
    ("ACC-2003", "postpaid", "Europe/London", ["+447700900601"]),
]
WITH_PACKAGE = {"+14165550201", "+12125550501"}
DESTINATIONS = [
    "+12125550100",
    "+14165550199",
    "+442071838750",
    "+447911123456",
    "+33142685300",
    "+919876543210",
    "+525512345678",
    "+639171234567",
]


def main() -> None:
    rng = random.Random(20261101)
    serial = 0
    out: list[dict[str, object]] = []

    def emit(type_: str, account: str, at: datetime, **fields: object) -> None:
        nonlocal serial
        serial += 1
        out.append(
            {
                "event_id": f"sample-{serial:05d}",
                "type": type_,
                "account_id": account,
                "occurred_at": instant_text(at),
                "schema_version": 1,
                "source": fields.pop("source", "sample"),
                **fields,
            }
        )

    catalog = load_catalog_file(default_catalog_path())
    out.append(
        {
            "event_id": f"catalog-{catalog.version}",
            "type": "catalog.published",
            "account_id": "*",
            "occurred_at": instant_text(catalog.effective_from),
            "schema_version": 1,
            "source": "catalog",
            "catalog": catalog.to_document(),
        }
    )

    for account, mode, tz, numbers in ACCOUNTS:
        emit(
            "account.opened",
            account,
            START + timedelta(hours=1),
            billing_mode=mode,
            currency="USD",
            timezone=tz,
        )
        for msisdn in numbers:
            emit("number.added", account, START + timedelta(hours=2), msisdn=msisdn)
        if mode == "prepaid":
            emit(
                "balance.recharged",
                account,
                START + timedelta(hours=3),
                amount=rng.choice(["10.00", "20.00", "25.00", "50.00"]),
            )
    emit(
        "plan.purchased",
        "ACC-1001",
        START + timedelta(days=1),
        msisdn="+14155550101",
        plan_id="na-500",
        channel="portal",
        autorenew=True,
    )
    emit(
        "plan.purchased",
        "ACC-2001",
        START + timedelta(days=2),
        msisdn="+13105550401",
        plan_id="na-500-yearly",
        channel="app_store",
    )
    # Prepaid packages are paid from the balance (D7): top up before buying one.
    emit("balance.recharged", "ACC-1002", START + timedelta(days=3), amount="20.00")
    emit(
        "package.subscribed",
        "ACC-1002",
        START + timedelta(days=3),
        msisdn="+14165550201",
        package_id="data-5gb",
    )
    emit(
        "package.subscribed",
        "ACC-2002",
        START + timedelta(days=9),
        msisdn="+12125550501",
        package_id="data-unlimited",
    )

    for day in range(30):
        for account, _mode, _tz, numbers in ACCOUNTS:
            for _ in range(rng.randint(0, 3)):
                at = START + timedelta(
                    days=day, hours=rng.randint(8, 21), minutes=rng.randint(0, 59)
                )
                msisdn = rng.choice(numbers)
                if rng.random() < 0.6:
                    emit(
                        "call.completed",
                        account,
                        at,
                        msisdn=msisdn,
                        destination=rng.choice(DESTINATIONS),
                        duration_seconds=rng.randint(5, 1800),
                        call_id=f"call-{serial + 1}",
                    )
                else:
                    roaming = rng.random() < 0.15
                    fields: dict[str, object] = {
                        "msisdn": msisdn,
                        # Numbers with a package stream; PAYG numbers use data sparingly.
                        "bytes": rng.randint(1_000_000, 250_000_000)
                        if msisdn in WITH_PACKAGE and not roaming
                        else rng.randint(20_000, 3_000_000),
                        "roaming": roaming,
                    }
                    if roaming:
                        fields["country"] = rng.choice(["FR", "GB", "MX", "JP"])
                    emit("data.used", account, at, **fields)
        if day == 14:
            emit(
                "balance.recharged",
                "ACC-1001",
                START + timedelta(days=day, hours=12),
                amount="15.00",
            )
            emit(
                "surcharge.applied",
                "ACC-2002",
                START + timedelta(days=day, hours=1),
                amount="1.25",
                kind="carrier",
                description="Carrier regulatory recovery fee",
            )
        if day == 20:
            emit(
                "port_out.requested",
                "ACC-2003",
                START + timedelta(days=day, hours=10),
                msisdn="+447700900601",
            )
    emit(
        "plan.autorenew_changed",
        "ACC-1001",
        START + timedelta(days=27),
        msisdn="+14155550101",
        enabled=False,
    )
    for account, *_ in ACCOUNTS:
        emit("cycle.started", account, datetime(2026, 12, 1, 5, tzinfo=UTC), period="2026-12")

    for doc in out:
        print(json.dumps(doc, sort_keys=True))
    # Bad records, as real feeds have them: each lands in the dead-letter file with a reason.
    print('{"event_id": "sample-bad-1", "type": "balance.recharged"')  # truncated JSON
    print(
        json.dumps(
            {
                "event_id": "sample-bad-2",
                "type": "balance.recharged",
                "account_id": "ACC-1003",
                "occurred_at": "2026-11-10T10:00:00",
                "schema_version": 1,
                "amount": "5.00",
            }
        )
    )  # no UTC offset
    print(
        json.dumps(
            {
                "event_id": "sample-bad-3",
                "type": "call.completed",
                "account_id": "ACC-9999",
                "occurred_at": "2026-11-10T10:00:00Z",
                "schema_version": 1,
                "msisdn": "+14155550999",
                "destination": "+12125550100",
                "duration_seconds": 60,
                "call_id": "call-x",
            }
        )
    )  # unknown account
    print(json.dumps(out[-8]))  # a duplicate delivery of an earlier event


if __name__ == "__main__":
    main()
