"""Stable aggregate ids: the same account id maps to the same stream on every machine."""

from functools import lru_cache
from uuid import UUID, uuid5

# Fixed forever: changing it would orphan every stored stream.
LEDGER_NAMESPACE = UUID("6f1c7a9e-3b52-4d1a-9a57-2d0e6c1b8f40")


@lru_cache(maxsize=65_536)  # hashed once per account, not once per event
def account_stream_id(account_id: str) -> UUID:
    return uuid5(LEDGER_NAMESPACE, f"account:{account_id}")


CATALOG_STREAM_ID = uuid5(LEDGER_NAMESPACE, "catalog")


def intake_stream_id(source: str) -> UUID:
    return uuid5(LEDGER_NAMESPACE, f"intake:{source}")
