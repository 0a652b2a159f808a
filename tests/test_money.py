"""Money at the edges (ISO 4217 exponents, refusals) and the payment waterfall."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.domain.allocation import COMPONENTS, CREDIT, DEFAULT_ORDER, allocate, check_order
from ledger.errors import CurrencyMismatch, InvalidAmount, LedgerError, UnknownCurrency
from ledger.money import Money, exponent, format_minor

ROUND_TRIP_CURRENCIES = ["USD", "JPY", "BHD", "GBP", "CNY"]


def code_of(call: object) -> str:
    assert callable(call)
    with pytest.raises(LedgerError) as caught:
        call()
    return caught.value.code


# ------------------------------------------------------------------ parsing


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("1200.00", "USD", 120000),
        ("1200", "USD", 120000),
        ("0.5", "USD", 50),
        ("0.05", "USD", 5),
        ("1200", "JPY", 1200),
        ("1200.000", "BHD", 1200000),
        ("1.234", "BHD", 1234),
        ("0.001", "BHD", 1),
        ("12.34", "GBP", 1234),
        ("  99.90 ", "CNY", 9990),
        ("-12.50", "USD", -1250),
    ],
)
def test_parse_uses_the_currency_exponent(text: str, currency: str, minor: int) -> None:
    """A decimal string becomes exact minor units using that currency's ISO 4217 exponent."""
    money = Money.parse(text, currency)
    assert money == Money(minor, currency)


def test_iso_exponents_of_common_currencies() -> None:
    """USD and GBP have 2 decimals, JPY none and BHD 3."""
    assert [exponent(c) for c in ("USD", "GBP", "JPY", "BHD")] == [2, 2, 0, 3]


@pytest.mark.parametrize(
    ("text", "currency"),
    [
        ("12.5", "JPY"),  # yen has no minor unit
        ("12.345", "USD"),
        ("1.2345", "BHD"),
        ("12,50", "USD"),
        ("1e3", "USD"),
        ("", "USD"),
        ("abc", "USD"),
        ("1.", "USD"),
        (".5", "USD"),
        ("+5", "USD"),
        ("1.2.3", "USD"),
        ("\u0661\u0662\u0660\u0660", "JPY"),  # Arabic-Indic digits are not ASCII
        ("\uff11\uff12", "JPY"),  # full-width digits
    ],
)
def test_malformed_or_too_precise_amounts_are_refused(text: str, currency: str) -> None:
    """Anything but plain ASCII digits with at most the currency's decimals is invalid_amount."""
    assert code_of(lambda: Money.parse(text, currency)) == "invalid_amount"


def test_too_many_decimals_names_the_currency_limit() -> None:
    """The refusal of "12.5" JPY tells the user how many decimals JPY allows."""
    with pytest.raises(InvalidAmount) as caught:
        Money.parse("12.5", "JPY")
    assert "(0)" in caught.value.message
    assert caught.value.details["currency"] == "JPY"


def test_trailing_zeros_beyond_the_exponent_are_harmless() -> None:
    """ "1200.00" yen is exactly 1200 yen: only non-zero extra decimals are refused."""
    assert Money.parse("1200.00", "JPY") == Money(1200, "JPY")


def test_long_amounts_are_parsed_exactly() -> None:
    """More than 28 significant digits are not rounded (Decimal's default precision)."""
    text = "12345678901234567890123456789.01"
    assert Money.parse(text, "USD").minor == 1234567890123456789012345678901


@pytest.mark.parametrize("currency", ["XYZ", "usd", "Usd", "US", "USDX", "", "XAU", "XAG", "XTS"])
def test_unknown_currencies_and_metals_are_refused(currency: str) -> None:
    """Non-codes, lowercase and codes without a minor unit (gold, silver, test) are refused."""
    assert code_of(lambda: Money.parse("1.00", currency)) == "unknown_currency"
    assert code_of(lambda: Money(100, currency)) == "unknown_currency"


def test_unknown_currency_reports_the_code() -> None:
    """The refusal carries the offending code so an API client can show it."""
    with pytest.raises(UnknownCurrency) as caught:
        Money.parse("1.00", "XAU")
    assert caught.value.as_dict()["currency"] == "XAU"


def test_non_string_currency_is_refused_not_crashed() -> None:
    """A list or None as currency is unknown_currency, not a TypeError."""
    assert code_of(lambda: Money.parse("1.00", ["USD"])) == "unknown_currency"  # type: ignore[arg-type]
    assert code_of(lambda: Money.parse("1.00", None)) == "unknown_currency"  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [12.5, 0.1, 1e3])
def test_floats_are_refused(value: float) -> None:
    """A float never becomes money, neither parsed nor as minor units."""
    assert code_of(lambda: Money.parse(value, "USD")) == "invalid_amount"  # type: ignore[arg-type]
    assert code_of(lambda: Money(value, "USD")) == "invalid_amount"  # type: ignore[arg-type]


def test_booleans_are_not_amounts() -> None:
    """True is not one cent."""
    assert code_of(lambda: Money(True, "USD")) == "invalid_amount"


# --------------------------------------------------------------- formatting


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (120000, "USD", "1200.00"),
        (5, "USD", "0.05"),
        (-5, "USD", "-0.05"),
        (0, "USD", "0.00"),
        (1200, "JPY", "1200"),
        (1234, "BHD", "1.234"),
        (1, "BHD", "0.001"),
    ],
)
def test_format_uses_the_currency_exponent(minor: int, currency: str, text: str) -> None:
    """Minor units print with exactly the currency's decimals, and parse back to the same value."""
    money = Money(minor, currency)
    assert money.to_decimal_string() == text
    assert str(money) == f"{text} {currency}"
    assert Money.parse(text, currency) == money


@settings(max_examples=200)
@given(minor=st.integers(), currency=st.sampled_from(ROUND_TRIP_CURRENCIES))
def test_format_then_parse_round_trips(minor: int, currency: str) -> None:
    """Every integer amount survives formatting and parsing unchanged, in every exponent."""
    assert Money.parse(format_minor(minor, currency), currency).minor == minor


def test_arithmetic_refuses_to_mix_currencies() -> None:
    """Dollars and euros never add up silently."""
    with pytest.raises(CurrencyMismatch) as caught:
        _ = Money(100, "USD") + Money(100, "EUR")
    assert caught.value.code == "currency_mismatch"
    assert Money(150, "USD") - Money(50, "USD") == Money(100, "USD")


# ---------------------------------------------------------------- waterfall

balances = st.fixed_dictionaries({c: st.integers(0, 10**9) for c in COMPONENTS})
orders = st.permutations(COMPONENTS)


def test_default_order_is_fees_interest_principal() -> None:
    """A 60.00 payment on 50.00 fees and 150.00 interest pays the fees, then 10.00 interest."""
    assert DEFAULT_ORDER == ("fees", "interest", "principal")
    balance = {"principal": 100000, "interest": 15000, "fees": 5000}
    assert allocate(6000, balance, DEFAULT_ORDER) == {"fees": 5000, "interest": 1000}


@settings(max_examples=150)
@given(amount=st.integers(0, 4 * 10**9), balance=balances, order=orders)
def test_allocation_parts_sum_to_the_amount(
    amount: int, balance: dict[str, int], order: list[str]
) -> None:
    """No money is lost or invented: the parts always add up to the payment."""
    assert sum(allocate(amount, balance, order).values()) == amount


@settings(max_examples=150)
@given(amount=st.integers(0, 4 * 10**9), balance=balances, order=orders)
def test_no_part_exceeds_its_component(
    amount: int, balance: dict[str, int], order: list[str]
) -> None:
    """A component is never paid below zero, and every part is positive."""
    parts = allocate(amount, balance, order)
    for component, part in parts.items():
        assert part > 0
        if component != CREDIT:
            assert part <= balance[component]


@settings(max_examples=150)
@given(amount=st.integers(0, 4 * 10**9), balance=balances, order=orders)
def test_credit_only_for_the_excess_over_the_total_balance(
    amount: int, balance: dict[str, int], order: list[str]
) -> None:
    """Credit appears only for an overpayment, and then is exactly the excess."""
    total = sum(balance.values())
    parts = allocate(amount, balance, order)
    if amount > total:
        assert parts[CREDIT] == amount - total
        assert all(parts.get(c, 0) == balance[c] for c in COMPONENTS)
    else:
        assert CREDIT not in parts


@settings(max_examples=150)
@given(amount=st.integers(0, 4 * 10**9), balance=balances, order=orders)
def test_earlier_components_are_paid_in_full_before_later_ones(
    amount: int, balance: dict[str, int], order: list[str]
) -> None:
    """If a component later in the order receives anything, every earlier one is fully paid."""
    parts = allocate(amount, balance, order)
    for i, component in enumerate(order):
        if parts.get(component, 0) > 0:
            for earlier in order[:i]:
                assert parts.get(earlier, 0) == balance[earlier]


@settings(max_examples=100)
@given(order=orders, balance=balances.filter(lambda b: all(v > 0 for v in b.values())))
def test_custom_order_is_honoured(order: list[str], balance: dict[str, int]) -> None:
    """A payment equal to the first component of a custom order goes entirely to it."""
    first = order[0]
    assert allocate(balance[first], balance, order) == {first: balance[first]}


def test_custom_order_changes_who_gets_paid() -> None:
    """Principal-first order puts the same 60.00 into principal instead of fees and interest."""
    balance = {"principal": 100000, "interest": 15000, "fees": 5000}
    assert allocate(6000, balance, ("principal", "interest", "fees")) == {"principal": 6000}


@pytest.mark.parametrize(
    "order",
    [("fees", "interest"), ("fees", "fees", "principal"), ("fees", "interest", "principal", "tax")],
)
def test_order_must_name_every_component_once(order: tuple[str, ...]) -> None:
    """An order that skips or repeats a component is refused, so no money goes unallocated."""
    with pytest.raises(ValueError, match="each of"):
        check_order(order)
