"""The per-stream hash chain that lets an audit catch a changed, removed or reordered event (R3)."""

import hashlib
from typing import Any

from ledger.canonical import canonical_bytes

GENESIS = ""


def link(previous: str, fact: dict[str, Any], outcome: dict[str, Any] | None) -> str:
    """The chain value of an event: sha256 over the previous value and the event's content."""
    payload = canonical_bytes({"previous": previous, "fact": fact, "outcome": outcome})
    return hashlib.sha256(payload).hexdigest()
