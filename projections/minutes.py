"""The plan-minutes view: one document per (account, number, period) with a plan batch."""

from typing import Any

from ledger.instants import period_end_text
from ledger.outcome import rated_msisdn
from projections.projection import Fact, Projection, ViewChanges

VIEW = "minutes"
ACCOUNTS_VIEW = "accounts"  # the time zone each account's periods are counted in
PLANS_VIEW = "plans"  # the plan each number holds now, and since which period


def minutes_key(account_id: str, msisdn: str, period: str) -> str:
    return f"{account_id}|{msisdn}|{period}"


def as_minutes(seconds: int) -> int | float:
    """Whole minutes as an integer; a part minute (non-60 s increments) to 4 places."""
    return seconds // 60 if seconds % 60 == 0 else round(seconds / 60, 4)


def minutes_doc(
    account_id: str, msisdn: str, plan: dict[str, Any], period: str, timezone: str, used: int
) -> dict[str, Any]:
    granted = plan["minutes"] * 60
    return {
        "account_id": account_id,
        "msisdn": msisdn,
        "plan_id": plan["plan_id"],
        "period": period,
        "countries": plan["countries"],
        "granted": as_minutes(granted),
        "used": as_minutes(used),
        "remaining": as_minutes(granted - used),
        "granted_seconds": granted,
        "used_seconds": used,
        "remaining_seconds": granted - used,
        "expires_at": period_end_text(period, timezone),
        "plan": plan,
    }


def is_past(period: str, held: dict[str, Any] | None) -> bool:
    """Minutes of a period before the latest the number's plan was granted: settled, for only
    a late call (B3) still takes them."""
    return held is not None and period < held["period"]


class MinutesProjection(Projection):
    FACT_TYPES = frozenset(
        {
            "plan.purchased",
            "plan.autorenew_changed",
            "plan.changed",
            "call.completed",
            "cycle.started",
            "port_in.completed",
            "port_out.completed",
        }
    )

    def opened(self, fact: Fact, changes: ViewChanges) -> None:
        changes.put(ACCOUNTS_VIEW, fact["account_id"], {"timezone": fact.get("timezone", "UTC")})

    def applied(self, fact: Fact, outcome: dict[str, Any], changes: ViewChanges) -> None:
        effects = outcome.get("effects", {})
        account_id = fact["account_id"]
        kind = fact["type"]
        if kind == "call.completed":  # first: most of the facts this view folds
            if "ported_out_at" in effects:  # a late call of a number gone with its views (P2)
                return
            msisdn = rated_msisdn(fact, effects)
            renewal = effects.get("renewal")
            if renewal is not None:  # a call ahead of its bill run renewed the plan (V6)
                self._grant(changes, account_id, msisdn, renewal["plan"], effects["period"])
            if not effects.get("plan_seconds"):
                return
            key = minutes_key(account_id, msisdn, effects["period"])
            doc = changes.get(VIEW, key)
            assert doc is not None, f"minutes used from a batch the view never saw: {key}"
            held = changes.get(PLANS_VIEW, f"{account_id}|{msisdn}")
            changes.put(
                VIEW,
                key,
                minutes_doc(
                    account_id,
                    msisdn,
                    doc["plan"],
                    doc["period"],
                    self._timezone(changes, account_id),
                    doc["used_seconds"] + effects["plan_seconds"],
                ),
                settled=is_past(doc["period"], held),  # a late call (B3)
            )
        elif kind == "plan.purchased":
            self._grant(changes, account_id, fact["msisdn"], effects["plan"], effects["period"])
            self._renewals_since(changes, account_id, fact["msisdn"], effects)
        elif kind == "cycle.started":
            period = effects["period"]
            for msisdn, change in effects.get("plans", {}).items():
                if change["action"] in ("changed", "renewed"):
                    self._grant(changes, account_id, msisdn, change["plan"], period)
        elif kind in ("plan.autorenew_changed", "plan.changed"):  # dated before bill runs,
            # logged after them (V7, V8): the renewals they reversed and made instead
            for period in effects.get("reversed_periods", ()):
                changes.delete(VIEW, minutes_key(account_id, fact["msisdn"], period))
            self._renewals_since(changes, account_id, fact["msisdn"], effects)
        elif kind == "port_in.completed":  # the ported number keeps the minutes (P1)
            old, new = fact["msisdn"], effects["replaced_by"]
            held = changes.get(PLANS_VIEW, f"{account_id}|{old}")
            for key in changes.keys(VIEW, f"{account_id}|{old}|"):
                period = key.rsplit("|", 1)[1]
                new_key = minutes_key(account_id, new, period)
                changes.move(VIEW, key, new_key, settled=is_past(period, held), msisdn=new)
            changes.move(PLANS_VIEW, f"{account_id}|{old}", f"{account_id}|{new}")
        elif kind == "port_out.completed":  # the number and its plan leave the account (P2)
            msisdn = fact["msisdn"]
            for key in changes.keys(VIEW, f"{account_id}|{msisdn}|"):
                changes.delete(VIEW, key)
            changes.delete(PLANS_VIEW, f"{account_id}|{msisdn}")

    def _timezone(self, changes: ViewChanges, account_id: str) -> str:
        doc = changes.get(ACCOUNTS_VIEW, account_id)
        assert doc is not None
        return str(doc["timezone"])

    def _renewals_since(
        self, changes: ViewChanges, account_id: str, msisdn: str, effects: dict[str, Any]
    ) -> None:
        """The minutes of the bill runs since a late fact's date (T2)."""
        for renewal in effects.get("renewals", ()):
            if renewal["action"] != "ended":
                self._grant(changes, account_id, msisdn, renewal["plan"], renewal["period"])

    def _grant(
        self,
        changes: ViewChanges,
        account_id: str,
        msisdn: str,
        plan: dict[str, Any],
        period: str,
    ) -> None:
        plan_key = f"{account_id}|{msisdn}"
        held = changes.get(PLANS_VIEW, plan_key)
        if held is not None and held["period"] < period:  # the minutes held till now are past
            past_key = minutes_key(account_id, msisdn, held["period"])
            past = changes.get(VIEW, past_key)
            if past is not None:
                changes.put(VIEW, past_key, past, settled=True)
        changes.put(
            VIEW,
            minutes_key(account_id, msisdn, period),
            minutes_doc(account_id, msisdn, plan, period, self._timezone(changes, account_id), 0),
        )
        changes.put(PLANS_VIEW, plan_key, {"period": period, "plan": plan})
