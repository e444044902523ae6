"""Dataclasses built without their generated `__init__`, and given a faster one.

A frozen dataclass's `__init__` sets each field through `object.__setattr__`, a call a field:
about 2,000 instructions a field on the bench machines (docs/PERFORMANCE.md, rounds 13 and
14). The ledger builds several for every event it consumes or reads back: the library's
records (ledger.records), the domain events its mapper reads and its accounts record, the
parsed incoming events, and the rules' outcomes and charges. `built` and `replaced` set an
instance's fields at once; `fields_at_once` writes a class an `__init__` that does. Each
makes exactly the instance the dataclass's `__init__` would, and skips only validation: use
them where the fields are already known to be valid. tests/test_frozen.py and
tests/test_fast_paths.py hold each use to the dataclass's own.
"""

import dataclasses
from typing import Any, TypeVar

Frozen = TypeVar("Frozen")


def built(cls: type[Frozen], fields: dict[str, Any]) -> Frozen:
    """An instance of a frozen dataclass (without slots) with these fields, and only these,
    given in the order of the class's fields (the order its `__init__` sets them)."""
    instance: Frozen = object.__new__(cls)
    object.__setattr__(instance, "__dict__", fields)
    return instance


def replaced(value: Frozen, **changes: Any) -> Frozen:
    """`dataclasses.replace` without running `__init__` again: for dataclasses without
    slots or `__post_init__`, frozen or not (the rules' outcomes, charges and states)."""
    copy: Frozen = object.__new__(type(value))  # as `built`, one call fewer: rules run it often
    object.__setattr__(copy, "__dict__", {**value.__dict__, **changes})
    return copy


def fields_at_once(cls: type[Frozen]) -> type[Frozen]:
    """A frozen dataclass given an `__init__` that sets its fields at once, as `built` does.

    The dataclass's own sets each through `object.__setattr__`, a call a field: 23,000
    instructions for a `Charge` of twelve fields, where this takes 12,000 (docs/PERFORMANCE.md,
    round 14). The parameters, defaults and default factories are the dataclass's; put it
    above `@dataclass(frozen=True)`, on a class without slots, `__post_init__` or keyword-only
    fields. tests/test_frozen.py compares it with the dataclass's own.
    """
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" in vars(cls):
        raise TypeError(f"{cls.__name__}: fields_at_once takes a frozen dataclass without slots")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: fields_at_once would not run its __post_init__")
    namespace: dict[str, Any] = {"_set": object.__setattr__, "_MISSING": dataclasses.MISSING}
    parameters, values = [], []
    for spec in dataclasses.fields(cls):  # type: ignore[arg-type]
        name = spec.name
        if not spec.init or spec.kw_only:
            raise TypeError(f"{cls.__name__}.{name}: fields_at_once takes plain fields only")
        value = name
        if spec.default is not dataclasses.MISSING:
            namespace[f"_default_{name}"] = spec.default
            name = f"{name}=_default_{name}"
        elif spec.default_factory is not dataclasses.MISSING:
            namespace[f"_factory_{name}"] = spec.default_factory
            value = f"_factory_{name}() if {name} is _MISSING else {name}"
            name = f"{name}=_MISSING"
        parameters.append(name)
        values.append(f"{spec.name!r}: {value}")
    source = (
        f"def __init__(self, {', '.join(parameters)}):\n"
        f"    _set(self, '__dict__', {{{', '.join(values)}}})\n"
    )
    exec(source, namespace)  # as dataclasses writes __init__: from its fields, once per class
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    cls.__init__ = init  # type: ignore[method-assign]
    return cls
