"""Errors named after what went wrong. Every one carries a reason a person can act on."""


class LedgerError(Exception):
    """Base of every error the ledger raises on purpose."""

    @property
    def reason(self) -> str:
        return str(self.args[0]) if self.args else type(self).__name__


class InvalidEvent(LedgerError):
    """An incoming record is not valid under the event contract (not JSON, schema, field)."""


class InvalidCatalog(LedgerError):
    """A catalog version is malformed or inconsistent."""


class RejectedEvent(LedgerError):
    """A valid event that the ledger's current state cannot accept (unknown account, number...).

    The pipeline dead-letters it with the reason; nothing in the ledger moves.
    """


class InvalidStoreURL(LedgerError):
    """A --store / LEDGER_STORE value the ledger cannot use."""


class StoreUnusable(LedgerError):
    """A store that is not there to read, or not the ledger's: a missing file, a directory, a
    file that is not an SQLite database or holds no ledger."""
