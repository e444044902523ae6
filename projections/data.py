"""The data-balance and throttle views: one document each per (account, number)."""

from typing import Any

from ledger.outcome import rated_msisdn
from projections.projection import Fact, Projection, ViewChanges

DATA_VIEW = "data"
THROTTLE_VIEW = "throttle"


def data_doc(account_id: str, msisdn: str, package: dict[str, Any] | None) -> dict[str, Any]:
    if package is None:
        return {
            "account_id": account_id,
            "msisdn": msisdn,
            "package_id": None,
            "remaining_bytes": 0,
            "valid_until": None,
            "unlimited": False,
            "renews": False,
        }
    return {
        "account_id": account_id,
        "msisdn": msisdn,
        "package_id": package["package_id"],
        "remaining_bytes": package["remaining_bytes"],
        "valid_until": package["valid_until"],
        "unlimited": package["unlimited"],
        "renews": package["renews"],
    }


def throttle_doc(account_id: str, msisdn: str, package: dict[str, Any] | None) -> dict[str, Any]:
    unlimited = package is not None and package["unlimited"]
    return {
        "account_id": account_id,
        "msisdn": msisdn,
        "package_id": package["package_id"] if package else None,
        "throttled": bool(unlimited and package and package["throttled"]),
        "since": package["throttled_since"] if unlimited and package else None,
        "fup_used_bytes": package["fup_used_bytes"] if unlimited and package else 0,
        "fup_bytes": package["fup_bytes"] if unlimited and package else 0,
        # Postpaid: the next period start; prepaid: the end of the 30-day window (D3, D8).
        "lifts_at": package["valid_until"] if unlimited and package else None,
    }


class DataProjection(Projection):
    # The types whose facts change a number's data documents: a number coming or going, and
    # the facts whose effects carry its package, the same that `Account.evolve` takes it from.
    FACT_TYPES = frozenset(
        {
            "number.added",
            "port_in.requested",
            "port_in.completed",
            "port_out.completed",
            "package.subscribed",
            "package.changed",
            "package.unsubscribed",
            "data.used",
            "cycle.started",
        }
    )

    def opened(self, fact: Fact, changes: ViewChanges) -> None:
        """An account opens without numbers: its data documents come with them."""

    def applied(self, fact: Fact, outcome: dict[str, Any], changes: ViewChanges) -> None:
        effects = outcome.get("effects", {})
        account_id = fact["account_id"]
        if "ported_out_at" in effects:  # a late record of a number gone with its views (P2)
            return
        if fact["type"] == "number.added" or (
            fact["type"] == "port_in.requested" and effects["added"]
        ):
            self._put(changes, account_id, fact["msisdn"], None)
        elif fact["type"] == "port_in.completed":  # the ported number keeps its package (P1)
            old, new = f"{account_id}|{fact['msisdn']}", f"{account_id}|{effects['replaced_by']}"
            changes.move(DATA_VIEW, old, new, msisdn=effects["replaced_by"])
            changes.move(THROTTLE_VIEW, old, new, msisdn=effects["replaced_by"])
        elif fact["type"] == "port_out.completed":  # its package ends, no refund (P2)
            for view in (DATA_VIEW, THROTTLE_VIEW):
                changes.delete(view, f"{account_id}|{fact['msisdn']}")
        elif "package" in effects and "msisdn" in fact:
            self._put(changes, account_id, rated_msisdn(fact, effects), effects["package"])
        elif fact["type"] == "cycle.started":
            for msisdn, package in effects.get("packages", {}).items():
                self._put(changes, account_id, msisdn, package)

    def _put(
        self, changes: ViewChanges, account_id: str, msisdn: str, package: dict[str, Any] | None
    ) -> None:
        key = f"{account_id}|{msisdn}"
        # Most data records leave one of the two as it was (a throttle without an unlimited
        # package, the data balance of an unlimited one): not written again.
        changes.put_if_changed(DATA_VIEW, key, data_doc(account_id, msisdn, package))
        changes.put_if_changed(THROTTLE_VIEW, key, throttle_doc(account_id, msisdn, package))
