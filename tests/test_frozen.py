"""Frozen dataclasses built in fewer steps (ledger.frozen) are exactly what the dataclass's own
`__init__` makes: the same fields in the same order, defaults and fresh default factories,
still frozen, equal, hashed and shown the same (round 14)."""

import dataclasses
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumers.pipeline import RawRecord
from ledger.frozen import built, fields_at_once, replaced
from ledger.outcome import Charge, Outcome


def _twin(cls: type) -> type:
    """The same class made by dataclasses alone, with the dataclass's own __init__."""
    specs = [
        (
            spec.name,
            spec.type,
            dataclasses.field(
                default=spec.default,
                default_factory=spec.default_factory,
                compare=spec.compare,
                repr=spec.repr,
            ),
        )
        for spec in dataclasses.fields(cls)
    ]
    return dataclasses.make_dataclass(cls.__name__, specs, frozen=True)


def _same(ours: Any, theirs: Any) -> None:
    assert list(vars(ours)) == list(vars(theirs)) and vars(ours) == vars(theirs)
    assert repr(ours) == repr(theirs)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ours.rule = "changed"


TEXT = st.text(max_size=8)
OPTIONAL_TEXT = st.none() | TEXT
CHARGE_ARGUMENTS = st.fixed_dictionaries(
    {
        "charge_id": TEXT,
        "kind": TEXT,
        "amount": st.decimals(allow_nan=False, allow_infinity=False, places=4),
        "rule": TEXT,
        "catalog_version": TEXT,
        "rate": TEXT,
        "arithmetic": TEXT,
        "period": TEXT,
        "payer": st.sampled_from(["balance", "payment_method", "invoice"]),
    },
    optional={"msisdn": OPTIONAL_TEXT, "billed_period": OPTIONAL_TEXT, "label": OPTIONAL_TEXT},
)


@given(CHARGE_ARGUMENTS, st.booleans())
def test_a_charge_is_what_the_dataclass_makes(arguments: dict[str, Any], positional: bool) -> None:
    twin = _twin(Charge)
    if positional:  # the required fields in their order, the optional ones by name
        names = [spec.name for spec in dataclasses.fields(Charge)][:9]
        given_in_order = [arguments.pop(name) for name in names]
        ours, theirs = Charge(*given_in_order, **arguments), twin(*given_in_order, **arguments)
        arguments.update(zip(names, given_in_order, strict=True))
    else:
        ours, theirs = Charge(**arguments), twin(**arguments)
    _same(ours, theirs)
    assert hash(ours) == hash(theirs)
    assert ours == Charge(**arguments) and ours != replaced(ours, label="other")


@given(
    st.sampled_from(["applied", "rejected", "not_yet_rated"]),
    TEXT,
    st.fixed_dictionaries(
        {},
        optional={
            "reason": OPTIONAL_TEXT,
            "balance_delta": st.just(Decimal("-1.5000")),
            "effects": st.dictionaries(TEXT, TEXT, max_size=2),
            "billed_period": OPTIONAL_TEXT,
        },
    ),
)
def test_an_outcome_is_what_the_dataclass_makes(
    status: str, rule: str, optional: dict[str, Any]
) -> None:
    ours = Outcome(status, rule, **optional)  # type: ignore[arg-type]
    _same(ours, _twin(Outcome)(status, rule, **optional))


def test_each_default_factory_makes_a_new_value() -> None:
    first, second = Outcome("applied", "r"), Outcome("applied", "r")
    assert first.effects == {} and first.effects is not second.effects
    assert first.charges == ()


def test_a_raw_record_is_what_the_dataclass_makes() -> None:
    _same(RawRecord(7, b"{}"), _twin(RawRecord)(7, b"{}"))
    assert RawRecord(position=7, value=b"{}") == RawRecord(7, b"{}")


def test_missing_and_unknown_arguments_are_refused_as_by_the_dataclass() -> None:
    with pytest.raises(TypeError, match="position"):
        RawRecord(value=b"{}")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="offset"):
        RawRecord(7, b"{}", offset=3)  # type: ignore[call-arg]


def test_only_frozen_dataclasses_without_slots_or_checks_are_taken() -> None:
    @dataclasses.dataclass
    class Loose:
        x: int

    @dataclasses.dataclass(frozen=True, slots=True)
    class Slotted:
        x: int

    @dataclasses.dataclass(frozen=True)
    class Checked:
        x: int

        def __post_init__(self) -> None:
            assert self.x > 0

    for refused in (Loose, Slotted, Checked):
        with pytest.raises(TypeError, match="fields_at_once"):
            fields_at_once(refused)


def test_built_and_replaced_make_the_instances_init_would() -> None:
    charge = Charge("c", "call", Decimal("1"), "V1", "v", "0.1", "1 x 0.1", "2026-11", "balance")
    _same(built(Charge, dict(vars(charge))), charge)
    moved = replaced(charge, billed_period="2026-12")
    _same(moved, dataclasses.replace(charge, billed_period="2026-12"))
    assert charge.billed_period is None
