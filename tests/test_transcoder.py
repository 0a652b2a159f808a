"""Tests for ledger.store.transcoder.MsgpackTranscoder."""

from __future__ import annotations

import enum
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar
from uuid import UUID, uuid4

import msgpack
import pytest
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, MutableOrImmutableAggregate, Snapshot, event
from eventsourcing.persistence import (
    Transcoder,
    Transcoding,
    TranscodingNotRegisteredError,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.store.transcoder import MsgpackTranscoder

# -- custom types used for registration --------------------------------------


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str


class MoneyAsDict(Transcoding):
    type = Money
    name = "money"

    def encode(self, obj: Money) -> dict[str, Any]:
        return {"amount": obj.amount, "currency": obj.currency}

    def decode(self, data: dict[str, Any]) -> Money:
        return Money(**data)


@dataclass(frozen=True)
class Envelope:
    """Wraps any supported value, so custom encodings nest arbitrarily."""

    value: Any


class EnvelopeAsValue(Transcoding):
    type = Envelope
    name = "envelope"

    def encode(self, obj: Envelope) -> Any:
        return obj.value

    def decode(self, data: Any) -> Envelope:
        return Envelope(data)


def make_transcoder() -> MsgpackTranscoder:
    t = MsgpackTranscoder()
    t.register(MoneyAsDict())
    t.register(EnvelopeAsValue())
    return t


@pytest.fixture
def transcoder() -> MsgpackTranscoder:
    return make_transcoder()


def assert_same(actual: Any, expected: Any) -> None:
    """Stricter than ==: types, dict key order, Decimal exponents, offsets."""
    assert type(actual) is type(expected), (actual, expected)
    if isinstance(expected, list | tuple):
        assert len(actual) == len(expected)
        for a, e in zip(actual, expected, strict=True):
            assert_same(a, e)
    elif isinstance(expected, dict):
        assert list(actual) == list(expected)
        for key in expected:
            assert_same(actual[key], expected[key])
    elif isinstance(expected, Decimal):
        assert str(actual) == str(expected)
    elif isinstance(expected, datetime):
        assert actual == expected
        assert actual.utcoffset() == expected.utcoffset()
        assert actual.replace(tzinfo=None) == expected.replace(tzinfo=None)
    elif isinstance(expected, Envelope):
        assert_same(actual.value, expected.value)
    elif isinstance(expected, Money):
        assert_same(actual.amount, expected.amount)
        assert_same(actual.currency, expected.currency)
    else:
        assert actual == expected


def round_trip(transcoder: MsgpackTranscoder, value: Any) -> Any:
    data = transcoder.encode(value)
    assert isinstance(data, bytes)
    return transcoder.decode(data)


# -- built-in types ----------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        -1,
        2**63 - 1,
        -(2**63),
        2**64 - 1,
        1.5,
        "",
        "naïve ünïcode ✓",
        b"",
        b"\x00\xff",
        [],
        {},
        {"nested": {"list": [1, "two", None]}},
        {1: "int keys", b"k": "bytes keys"},
    ],
)
def test_native_values_round_trip(transcoder: MsgpackTranscoder, value: Any) -> None:
    """Native msgpack values (None, bool, int, float, str, bytes, list, dict) round-trip."""
    assert_same(round_trip(transcoder, value), value)


def test_bytes_and_str_stay_distinct(transcoder: MsgpackTranscoder) -> None:
    """bytes decode as bytes and str as str, even with identical contents."""
    decoded = round_trip(transcoder, {"b": b"abc", "s": "abc"})
    assert type(decoded["b"]) is bytes
    assert type(decoded["s"]) is str


def test_uuid_round_trips(transcoder: MsgpackTranscoder) -> None:
    """UUIDs round-trip as UUID objects."""
    value = [uuid4(), UUID(int=0), UUID(int=2**128 - 1)]
    assert_same(round_trip(transcoder, value), value)


@pytest.mark.parametrize(
    "value",
    [
        datetime(2024, 3, 1, 12, 30, 45, 123456, tzinfo=UTC),
        datetime(2024, 3, 1, 12, 30, 45, 1, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-8))),
        datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=23, minutes=59, seconds=59))),
        datetime.min.replace(tzinfo=timezone(timedelta(hours=23, minutes=59))),
        datetime.max.replace(tzinfo=timezone(timedelta(hours=-23, minutes=-59))),
    ],
)
def test_aware_datetime_round_trips_with_offset(
    transcoder: MsgpackTranscoder, value: datetime
) -> None:
    """Aware datetimes keep instant, wall-clock time, microseconds and UTC offset."""
    assert_same(round_trip(transcoder, value), value)


def test_utc_datetime_decodes_with_timezone_utc(transcoder: MsgpackTranscoder) -> None:
    """A UTC datetime decodes with datetime.timezone.utc as its tzinfo."""
    decoded = round_trip(transcoder, datetime(2024, 1, 1, tzinfo=UTC))
    assert decoded.tzinfo is UTC


def test_naive_datetime_rejected(transcoder: MsgpackTranscoder) -> None:
    """Naive datetimes are refused with a TypeError mentioning 'naive'."""
    with pytest.raises(TypeError, match="naive"):
        transcoder.encode({"at": datetime(2024, 1, 1, 12, 0)})


def test_sub_second_utc_offset_rejected(transcoder: MsgpackTranscoder) -> None:
    """A UTC offset with a sub-second part cannot be stored and raises ValueError."""
    tz = timezone(timedelta(seconds=1, microseconds=5))
    with pytest.raises(ValueError, match="sub-second"):
        transcoder.encode(datetime(2024, 1, 1, tzinfo=tz))


@pytest.mark.parametrize("value", [date(2024, 2, 29), date.min, date.max, date(1970, 1, 1)])
def test_date_round_trips(transcoder: MsgpackTranscoder, value: date) -> None:
    """Dates round-trip as date (not datetime) objects."""
    assert_same(round_trip(transcoder, value), value)


@pytest.mark.parametrize(
    "value",
    ["1200.00", "0", "-0", "0.000", "1E+3", "-12345678901234567890.123456789", "1e-30"],
)
def test_decimal_round_trips_keeping_exponent(transcoder: MsgpackTranscoder, value: str) -> None:
    """Decimals round-trip exactly, including their exponent (1200.00 stays 1200.00)."""
    decoded = round_trip(transcoder, Decimal(value))
    assert type(decoded) is Decimal
    assert str(decoded) == str(Decimal(value))


def test_nested_tuples_round_trip_as_tuples(transcoder: MsgpackTranscoder) -> None:
    """Tuples nested in lists in dicts come back as tuples, lists as lists."""
    value = {"rows": [(1, ("a", [2, (3,)]), ()), [4, 5]], "pair": (Decimal("1.10"), None)}
    assert_same(round_trip(transcoder, value), value)


def test_frozenset_round_trips(transcoder: MsgpackTranscoder) -> None:
    """Frozensets of hashable values (including tuples) round-trip as frozensets."""
    value = [frozenset(), frozenset({1, "a", b"a", (1, 2), UUID(int=7), date(2024, 1, 1)})]
    assert_same(round_trip(transcoder, value), value)


def test_large_frozenset_round_trips(transcoder: MsgpackTranscoder) -> None:
    """Frozensets needing 16- and 32-bit array headers round-trip."""
    for size in (15, 16, 65535, 65536):
        value = frozenset(range(size))
        assert round_trip(transcoder, value) == value


@pytest.mark.parametrize("value", [2**64, -(2**63) - 1, 10**30])
def test_int_outside_64_bit_range_rejected(transcoder: MsgpackTranscoder, value: int) -> None:
    """Ints outside msgpack's 64-bit range raise OverflowError naming the problem."""
    with pytest.raises(OverflowError, match="64-bit integer range"):
        transcoder.encode({"n": value})


# -- exact bytes (the stored format must never change) -------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (UUID(int=1), b"\xd8\x01" + bytes(15) + b"\x01"),
        (
            datetime(1970, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=1))),
            b"\xc7\x0c\x02" + bytes(8) + (3600).to_bytes(4, "big"),
        ),
        (
            datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
            b"\xc7\x0c\x02" + (1).to_bytes(8, "big") + bytes(4),
        ),
        (date(1970, 1, 1), b"\xd6\x03" + (719163).to_bytes(4, "big")),
        (Decimal("1200.00"), b"\xc7\x07\x04" + b"1200.00"),
        ((1, 2), b"\xc7\x03\x05\x92\x01\x02"),
        (frozenset({2, 1}), b"\xc7\x03\x06\x92\x01\x02"),
        (
            Money(Decimal("1"), "GBP"),
            b"\xc7\x1f\x07\x92\xa5money\x82\xa6amount\xd4\x041\xa8currency\xa3GBP",
        ),
    ],
)
def test_encoding_matches_pinned_bytes(
    transcoder: MsgpackTranscoder, value: Any, expected: bytes
) -> None:
    """Each ext code and payload layout is pinned, so stored data stays readable."""
    assert transcoder.encode(value) == expected
    assert_same(transcoder.decode(expected), value)


# -- registered custom types -------------------------------------------------


def test_registered_custom_type_round_trips(transcoder: MsgpackTranscoder) -> None:
    """A registered Transcoding (frozen dataclass) round-trips."""
    value = Money(Decimal("1200.00"), "GBP")
    assert_same(round_trip(transcoder, value), value)


def test_registered_custom_type_round_trips_nested(transcoder: MsgpackTranscoder) -> None:
    """Custom types nest inside containers and inside each other's encoded data."""
    money = Money(Decimal("9.99"), "EUR")
    value = {
        "items": [money, (money, Envelope({"inner": Envelope((money, date(2024, 5, 6)))}))],
        "set": frozenset({money}),
    }
    assert_same(round_trip(transcoder, value), value)


def test_register_rejects_builtin_types() -> None:
    """Registering a Transcoding for a natively or built-in handled type raises ValueError."""

    class DecimalAsFloat(Transcoding):
        type = Decimal
        name = "decimal_float"

        def encode(self, obj: Decimal) -> float:
            return float(obj)

        def decode(self, data: float) -> Decimal:
            return Decimal(data)

    class StrUpper(Transcoding):
        type = str
        name = "str_upper"

        def encode(self, obj: str) -> str:
            return obj.upper()

        def decode(self, data: str) -> str:
            return data

    t = MsgpackTranscoder()
    for transcoding in (DecimalAsFloat(), StrUpper()):
        with pytest.raises(ValueError, match="built into"):
            t.register(transcoding)


def test_register_rejects_name_reused_for_other_type() -> None:
    """A Transcoding name cannot be re-bound to a different type."""

    class EnvelopeNamedMoney(EnvelopeAsValue):
        name = "money"

    t = MsgpackTranscoder()
    t.register(MoneyAsDict())
    t.register(MoneyAsDict())  # same name, same type: fine
    with pytest.raises(ValueError, match="'money' is already registered"):
        t.register(EnvelopeNamedMoney())


def test_unknown_registered_name_on_decode_raises_value_error(
    transcoder: MsgpackTranscoder,
) -> None:
    """Decoding a custom value whose name is not registered raises ValueError naming it."""
    data = transcoder.encode([Money(Decimal("1"), "GBP")])
    with pytest.raises(ValueError, match="'money'"):
        MsgpackTranscoder().decode(data)


# -- errors -------------------------------------------------------------------


class Unsupported:
    pass


class Colour(enum.StrEnum):
    RED = "red"


def test_unsupported_type_error_names_the_type(transcoder: MsgpackTranscoder) -> None:
    """Encoding an unregistered type raises TranscodingNotRegisteredError naming it."""
    with pytest.raises(TranscodingNotRegisteredError) as info:
        transcoder.encode({"x": [Unsupported()]})
    message = str(info.value)
    assert "'Unsupported'" in message
    assert f"{__name__}.Unsupported" in message
    assert "register a Transcoding" in message
    assert isinstance(info.value, TypeError)


@pytest.mark.parametrize("value", [{1, 2}, Colour.RED, 1 + 2j])
def test_unregistered_builtin_and_subclass_types_rejected(
    transcoder: MsgpackTranscoder, value: Any
) -> None:
    """Sets, complex numbers and subclasses of native types (StrEnum) are rejected."""
    with pytest.raises(TranscodingNotRegisteredError, match=repr(type(value).__qualname__)):
        transcoder.encode(value)


def test_unknown_ext_code_on_decode_raises_value_error(transcoder: MsgpackTranscoder) -> None:
    """Decoding an ExtType code the transcoder does not know raises ValueError naming it."""
    data = msgpack.packb({"x": msgpack.ExtType(99, b"?")})
    with pytest.raises(ValueError, match="unknown code 99"):
        transcoder.decode(data)


# -- determinism --------------------------------------------------------------


def test_encoding_is_deterministic(transcoder: MsgpackTranscoder) -> None:
    """The same value encodes to the same bytes, across calls and transcoder instances."""
    value = {
        "id": UUID(int=42),
        "at": datetime(2024, 3, 1, 9, 0, tzinfo=timezone(timedelta(hours=2))),
        "amount": Decimal("1200.00"),
        "refs": ("a", "b"),
        "tags": frozenset({"x", "y", "z", ("t", 1)}),
        "money": Money(Decimal("5"), "GBP"),
    }
    first = transcoder.encode(value)
    assert transcoder.encode(value) == first
    assert make_transcoder().encode(value) == first
    assert transcoder.encode(transcoder.decode(first)) == first


def test_frozenset_bytes_independent_of_hash_seed(transcoder: MsgpackTranscoder) -> None:
    """Frozenset encoding does not depend on PYTHONHASHSEED (set iteration order)."""
    code = (
        "from ledger.store.transcoder import MsgpackTranscoder\n"
        "words = frozenset(f'word{i}' for i in range(50))\n"
        "print(MsgpackTranscoder().encode(words).hex())\n"
    )
    root = str(Path(__file__).resolve().parents[1])
    outputs = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": root}
        result = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        outputs.add(result.stdout.strip())
    expected = transcoder.encode(frozenset(f"word{i}" for i in range(50))).hex()
    assert outputs == {expected}


# -- property-based round trip ------------------------------------------------

fixed_offsets = st.integers(min_value=-86_399, max_value=86_399).map(
    lambda seconds: timezone(timedelta(seconds=seconds))
)
hashable_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.text(max_size=20),
    st.binary(max_size=20),
    st.uuids(),
    st.datetimes(timezones=fixed_offsets),
    st.dates(),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.builds(Money, st.decimals(allow_nan=False, allow_infinity=False), st.text(max_size=3)),
)
leaves = hashable_scalars | st.frozensets(hashable_scalars, max_size=5)
values = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(st.text(max_size=8), children, max_size=4),
        st.builds(Envelope, children),
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(values)
def test_property_round_trip_preserves_value_and_types(value: Any) -> None:
    """decode(encode(x)) == x for nested supported values, with exact types kept."""
    transcoder = make_transcoder()
    data = transcoder.encode(value)
    decoded = transcoder.decode(data)
    assert decoded == value
    assert_same(decoded, value)
    assert transcoder.encode(decoded) == data


# -- eventsourcing integration ------------------------------------------------


class Debt(Aggregate):
    @event("Opened")
    def __init__(self, debtor: str) -> None:
        self.debtor = debtor
        self.charges: list[tuple[Decimal, date, tuple[str, ...]]] = []

    @event("Charged")
    def charge(self, amount: Decimal, due: date, refs: tuple[str, ...]) -> None:
        self.charges.append((amount, due, refs))


class DebtBook(Application[UUID]):
    def construct_transcoder(self) -> Transcoder:
        return MsgpackTranscoder()


class SnapshottingDebtBook(DebtBook):
    snapshotting_intervals: ClassVar[dict[type[MutableOrImmutableAggregate[Any]], int]] = {Debt: 2}


POPO_ENV = {"PERSISTENCE_MODULE": "eventsourcing.popo"}


def assert_same_debt(actual: Debt, expected: Debt) -> None:
    assert actual.id == expected.id
    assert actual.version == expected.version
    assert actual.debtor == expected.debtor
    assert_same(actual.charges, expected.charges)
    assert_same(actual.created_on, expected.created_on)
    assert_same(actual.modified_on, expected.modified_on)


def test_application_saves_and_reloads_aggregate() -> None:
    """An Application using MsgpackTranscoder stores and replays events with tuple/Decimal/date."""
    app = DebtBook(env=POPO_ENV)
    assert isinstance(app.mapper.transcoder, MsgpackTranscoder)
    debt = Debt("alice")
    debt.charge(Decimal("1200.00"), date(2024, 3, 1), ("INV-1", "INV-2"))
    app.save(debt)

    stored = app.recorder.select_events(debt.id)
    assert len(stored) == 2
    state = MsgpackTranscoder().decode(stored[1].state)
    assert_same(state["refs"], ("INV-1", "INV-2"))
    assert_same(state["amount"], Decimal("1200.00"))

    assert_same_debt(app.repository.get(debt.id), debt)


def test_application_snapshot_round_trips() -> None:
    """Snapshots taken by an Application encode and decode through MsgpackTranscoder."""
    app = SnapshottingDebtBook(env=POPO_ENV)
    debt = Debt("bob")
    debt.charge(Decimal("10.50"), date(2024, 1, 31), ("A",))
    debt.charge(Decimal("0.01"), date(2024, 2, 29), ())
    debt.charge(Decimal("1E+3"), date(2024, 3, 31), ("B", "C"))
    app.save(debt)
    assert debt.version == 4

    assert app.snapshots is not None
    snapshots = list(app.snapshots.get(debt.id, desc=True))
    assert [s.originator_version for s in snapshots] == [4, 2]
    assert isinstance(snapshots[0], Snapshot)
    from_snapshot = snapshots[0].mutate(None)
    assert isinstance(from_snapshot, Debt)
    assert_same_debt(from_snapshot, debt)
    assert_same_debt(app.repository.get(debt.id), debt)
