"""Frozen dataclasses built without their `__init__`.

A frozen dataclass's `__init__` sets each field through `object.__setattr__`: 1.4-1.8 µs for
one of the library's records on the bench machines, where setting the instance's fields at
once takes 0.5-0.7 (docs/PERFORMANCE.md, round 13). The ledger builds several for every event
it consumes or reads back: the library's records (ledger.records), the domain events its
mapper reads and its accounts record, and the rules' outcomes and charges. Built here, each is
exactly the instance its `__init__` would make, and skips only its validation: use these where
the fields are already known to be valid. tests/test_fast_paths.py holds each use to it.
"""

from typing import Any, TypeVar

Frozen = TypeVar("Frozen")


def built(cls: type[Frozen], fields: dict[str, Any]) -> Frozen:
    """An instance of a frozen dataclass (without slots) with these fields, and only these,
    given in the order of the class's fields (the order its `__init__` sets them)."""
    instance: Frozen = object.__new__(cls)
    object.__setattr__(instance, "__dict__", fields)
    return instance


def replaced(value: Frozen, **changes: Any) -> Frozen:
    """`dataclasses.replace` without running `__init__` and its validation again."""
    copy: Frozen = object.__new__(type(value))  # as `built`, one call fewer: rules run it often
    object.__setattr__(copy, "__dict__", {**value.__dict__, **changes})
    return copy
