"""An in-memory ledger for domain tests: feed events, read views, inspect dead letters.

Goes through the same public entry points as the real sources (contract parsing, the
pipeline, the projections), only with the eventsourcing in-memory recorder and a dict view
store, so rules are tested fast and exhaustively.
"""

import json
from collections.abc import Sequence
from typing import Any

from consumers.pipeline import RawRecord, process_batch
from ledger.account import Account
from ledger.application import BatchCounts, DeadLetter, LedgerApp
from ledger.history import account_history
from ledger.store import memory_store
from projections.invoices import read_invoices
from projections.runner import catch_up, rebuild, view_documents
from projections.store import MemoryViewStore


class Ledger:
    def __init__(self) -> None:
        self.app = LedgerApp(memory_store())
        self.views = MemoryViewStore()
        self.dead_letters: list[DeadLetter] = []
        self._position = 0

    def feed(self, *events: dict[str, Any] | str | bytes) -> BatchCounts:
        """Apply events (dicts, or raw lines for bad input) as one batch; views catch up."""
        records = []
        for event in events:
            self._position += 1
            value = (
                event
                if isinstance(event, bytes)
                else event.encode()
                if isinstance(event, str)
                else json.dumps(event).encode()
            )
            records.append(RawRecord(self._position, value))
        counts = process_batch(self.app, "test", records, self.dead_letters.extend)
        catch_up(self.app, self.views)
        return counts

    def feed_each(self, events: Sequence[dict[str, Any]]) -> None:
        """Apply events one batch each (as a slow trickle would arrive)."""
        for event in events:
            self.feed(event)

    def reasons(self) -> list[str]:
        return [letter.reason for letter in self.dead_letters]

    def account(self, account_id: str) -> Account:
        account = self.app.account(account_id)
        assert account is not None
        return account

    def balance(self, account_id: str) -> str:
        doc = self.views.get("balance", account_id)
        assert doc is not None
        return str(doc["balance"])

    def minutes(self, account_id: str, msisdn: str, period: str) -> dict[str, Any] | None:
        return self.views.get("minutes", f"{account_id}|{msisdn}|{period}")

    def data(self, account_id: str, msisdn: str) -> dict[str, Any] | None:
        return self.views.get("data", f"{account_id}|{msisdn}")

    def throttle(self, account_id: str, msisdn: str) -> dict[str, Any] | None:
        return self.views.get("throttle", f"{account_id}|{msisdn}")

    def invoice(self, account_id: str, period: str) -> dict[str, Any] | None:
        """The invoice or statement as support and finance read it (lines with their ids)."""
        found = read_invoices(self.views, account_id, period)
        return found[0] if found else None

    def history(self, account_id: str) -> list[dict[str, Any]]:
        return account_history(self.app, account_id) or []

    def last_outcome(self, account_id: str) -> dict[str, Any]:
        return self.history(account_id)[-1]

    def charges(self, account_id: str) -> list[dict[str, Any]]:
        return [c for entry in self.history(account_id) for c in entry["charges"]]

    def all_views(self) -> dict[str, dict[str, Any]]:
        """Every view document, for comparing a live ledger with a replay."""
        return view_documents(self.views)

    def assert_replay_matches(self) -> None:
        """A fresh replay of the stored events gives the live views and account states (R1)."""
        live = self.all_views()
        rebuild(self.app, self.views)
        assert self.all_views() == live
        live_states = {
            account.account_id: account.snapshot_document()
            for account in self.app._accounts.values()
        }
        self.app.forget_cached()
        for account_id, state in live_states.items():
            replayed = self.app.account(account_id)
            assert replayed is not None
            assert replayed.snapshot_document() == state
