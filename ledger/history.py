"""An account's timeline, read straight from its stream: every fact, outcome and charge."""

from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from ledger.account import Account
from ledger.ids import account_stream_id

# Facts worth a short phrase in a timeline; other types show their type name alone.
_SUMMARIES: dict[str, tuple[str, ...]] = {
    "number.added": ("msisdn",),
    "balance.recharged": ("amount",),
    "plan.purchased": ("msisdn", "plan_id", "channel"),
    "plan.autorenew_changed": ("msisdn", "enabled"),
    "plan.changed": ("msisdn", "plan_id"),
    "call.completed": ("msisdn", "destination", "duration_seconds"),
    "data.used": ("msisdn", "bytes", "roaming", "country"),
    "package.subscribed": ("msisdn", "package_id"),
    "package.changed": ("msisdn", "package_id"),
    "package.unsubscribed": ("msisdn",),
    "cycle.started": ("period",),
    "port_in.requested": ("msisdn", "ported_msisdn"),
    "port_in.completed": ("msisdn", "ported_msisdn"),
    "port_in.failed": ("msisdn", "ported_msisdn"),
    "port_out.requested": ("msisdn",),
    "port_out.completed": ("msisdn",),
    "surcharge.applied": ("amount", "kind", "description", "msisdn"),
    "adjustment.posted": ("amount", "reason", "approved_by"),
    "refund.requested": ("charge_id", "reason"),
    "account.blocked": ("reason",),
    "account.unblocked": ("reason",),
}


class EventSource(Protocol):
    def get(self, originator_id: Any, *, desc: bool = False, limit: int | None = None) -> Any: ...


class HasEvents(Protocol):
    @property
    def events(self) -> EventSource: ...


def summary(fact: dict[str, Any]) -> str:
    keys = _SUMMARIES.get(fact["type"], ())
    return " ".join(f"{key}={_shown(fact[key])}" for key in keys if key in fact)


def _shown(value: object) -> str:
    """A field's value as people read it, yes/no for a flag as the tables print it."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def outcome_text(fact: dict[str, Any], outcome: dict[str, Any]) -> str | None:
    """What an applied fact did that its charges do not say, in a phrase: a dispute's
    decision and why, a call's plan minutes, a data record's bytes from its package. None
    where the charges (or the rejection's reason) say it all."""
    effects = outcome.get("effects") or {}
    if outcome["status"] != "applied":
        return None
    kind = fact["type"]
    if kind == "refund.requested" and "decision" in effects:
        decision = effects["decision"]
        head = f"credited {effects['credited']}" if decision == "credited" else decision
        clause = f" under the {effects['clause']} clause" if effects.get("clause") else ""
        return f"{head}{clause}: {effects['evidence']}"
    if kind == "call.completed" and effects.get("plan_arithmetic"):
        return str(effects["plan_arithmetic"])
    if kind == "data.used" and effects.get("package_bytes"):
        text = f"{effects['package_bytes']} bytes from the package"
        if effects.get("throttle_crossed"):
            text += "; the fair-use threshold is reached: throttled for the rest of the cycle"
        return text
    return None


def account_history(
    app: HasEvents, account_id: str, latest: int | None = None
) -> list[dict[str, Any]] | None:
    """Entries in stream order, only the `latest` ones if given; None when the account was
    never opened. Each entry stands alone, so the latest are read from the end of the stream,
    not after the whole of a long one."""
    stream = account_stream_id(account_id)
    if latest is None:
        events = list(app.events.get(stream))
    else:
        events = list(app.events.get(stream, desc=True, limit=latest))[::-1]
    entries: list[dict[str, Any]] = []
    for event in events:
        if isinstance(event, Account.Opened):
            fact = event.fact
            entries.append(
                {
                    "version": event.originator_version,
                    "event_id": fact["event_id"],
                    "type": fact["type"],
                    "occurred_at": fact["occurred_at"],
                    "status": "applied",
                    "rule": "M1",
                    "reason": None,
                    "summary": f"{fact['billing_mode']} {fact['currency']} "
                    f"timezone={fact.get('timezone', 'UTC')}",
                    "balance_delta": "0.0000",
                    "outcome": None,
                    "charges": [],
                }
            )
        elif isinstance(event, Account.FactApplied):
            fact, outcome = event.fact, event.outcome
            entries.append(
                {
                    "version": event.originator_version,
                    "event_id": fact["event_id"],
                    "type": fact["type"],
                    "occurred_at": fact["occurred_at"],
                    "status": outcome["status"],
                    "rule": outcome["rule"],
                    "reason": outcome["reason"],
                    "summary": summary(fact),
                    "balance_delta": outcome["balance_delta"],
                    "outcome": outcome_text(fact, outcome),
                    "charges": outcome["charges"],
                }
            )
    return entries or None


CHARGE_COLUMNS = (
    "account_id",
    "event_id",
    "event_type",
    "occurred_at",
    "charge_id",
    "kind",
    "rule",
    "amount",
    "period",
    "billed_period",
    "payer",
    "msisdn",
    "catalog_version",
    "rate",
    "arithmetic",
    "label",
)


def charge_rows(events: Iterable[object]) -> Iterator[dict[str, Any]]:
    """One flat row per charge in the stored events, in log order (for export)."""
    for event in events:
        if not isinstance(event, Account.FactApplied):
            continue
        fact = event.fact
        for charge in event.outcome["charges"]:
            row = {
                "account_id": fact["account_id"],
                "event_id": fact["event_id"],
                "event_type": fact["type"],
                "occurred_at": fact["occurred_at"],
                **charge,
            }
            yield {column: row.get(column) for column in CHARGE_COLUMNS}
