"""Canonical JSON: one byte-identical text for one value, on every run and machine (R1)."""

from decimal import Decimal
from typing import Any

import orjson


def _default(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} has no canonical JSON form")


def canonical_bytes(value: Any) -> bytes:
    """Sorted keys, no insignificant white space, UTF-8 text kept as is, Decimal as string."""
    return orjson.dumps(value, default=_default, option=orjson.OPT_SORT_KEYS)


def canonical_json(value: Any) -> str:
    return canonical_bytes(value).decode("utf-8")
