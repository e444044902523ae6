"""Canonical JSON: one byte-identical text for one value, on every run and machine (R1)."""

import json
from decimal import Decimal
from typing import Any


def _default(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} has no canonical JSON form")


def canonical_json(value: Any) -> str:
    """Sorted keys, no insignificant white space, UTF-8 text kept as is, Decimal as string."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default
    )
