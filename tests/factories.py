"""Builders of incoming events for tests: valid JSON lines with sensible defaults."""

import json
from itertools import count
from typing import Any

from ledger.catalog import default_catalog_path, load_catalog_file
from ledger.instants import instant_text

_ids = count(1)


def event(
    type_: str, account_id: str, occurred_at: str = "2026-11-02T10:00:00Z", **fields: Any
) -> dict[str, Any]:
    return {
        "event_id": fields.pop("event_id", f"ev-{next(_ids)}"),
        "type": type_,
        "account_id": account_id,
        "occurred_at": occurred_at,
        "schema_version": 1,
        **fields,
    }


def catalog_published(event_id: str = "catalog-default") -> dict[str, Any]:
    version = load_catalog_file(default_catalog_path())
    return {
        "event_id": event_id,
        "type": "catalog.published",
        "account_id": "*",
        "occurred_at": instant_text(version.effective_from),
        "schema_version": 1,
        "catalog": version.to_document(),
    }


def opened(account_id: str, mode: str = "prepaid", **fields: Any) -> dict[str, Any]:
    return event(
        "account.opened",
        account_id,
        "2026-11-01T09:00:00Z",
        billing_mode=mode,
        currency="USD",
        **fields,
    )


def line(doc: dict[str, Any]) -> str:
    return json.dumps(doc)


def jsonl(*docs: dict[str, Any] | str) -> str:
    """JSON Lines text; plain strings are written as they are (for bad lines)."""
    return "".join((d if isinstance(d, str) else line(d)) + "\n" for d in docs)


def mixed_month() -> str:
    """A small month for two accounts with every kind of record the skeleton must handle."""
    recharge = event("balance.recharged", "ACC-1", amount="20.00", event_id="dup-1")
    return jsonl(
        catalog_published(),
        opened("ACC-1", timezone="America/New_York"),
        opened("ACC-2", mode="postpaid"),
        event("number.added", "ACC-1", msisdn="+14155550101"),
        event("number.added", "ACC-2", msisdn="+14155550202"),
        recharge,
        recharge,  # the same event_id again: a duplicate, counted once (G1)
        "this is not JSON",
        event("balance.recharged", "ACC-1", amount=12.5),  # schema: money must be a string
        event("balance.recharged", "ACC-1", occurred_at="2026-11-03T10:00:00", amount="1.00"),
        event("balance.recharged", "ACC-404", amount="5.00"),  # unknown account
        event("balance.recharged", "ACC-1", amount="7.35"),
        event(
            "call.completed",
            "ACC-1",
            msisdn="+14155550101",
            destination="+12125550100",
            duration_seconds=95,
            call_id="call-1",
        ),
        event("data.used", "ACC-2", msisdn="+14155550202", bytes=1_500_000, roaming=False),
        event(
            "balance.recharged", "ACC-1", occurred_at="2026-11-20T08:00:00-05:00", amount="0.0125"
        ),
    )


# What mixed_month() must give on ACC-1: 20.00 + 7.35 + 0.0125 in recharges (the duplicate
# once), less the PAYG call: 95 s to +1 (US) -> 120 s billed = 2 min x 0.0150 = 0.0300 (V5).
# ACC-2 is postpaid: no balance moves.
MIXED_MONTH_BALANCES = {"ACC-1": "27.3325", "ACC-2": "0.0000"}
MIXED_MONTH_COUNTS = {"consumed": 15, "applied": 10, "duplicates": 1, "dead_lettered": 4}
