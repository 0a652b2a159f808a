"""Money and rates at the edge: decimal strings in, exact integers out, never floats.

A JSON number is refused by the schemas before anything here runs (``x-money``);
here the currency decides how many decimals an amount may have.  ``"12.345"`` is
a bad USD amount (400 ``invalid_amount``), not a rounded one.
"""

from __future__ import annotations

from api.errors import bad_request
from ledger import errors
from ledger.money import Money, exponent, format_minor


def parse_amount(text: str, currency: str, field: str) -> Money:
    """``text`` as an amount of ``currency``, with at most the currency's decimals."""
    try:
        digits = exponent(currency)
    except errors.UnknownCurrency as e:
        raise bad_request(e.code, e.message, field="currency") from None
    whole, _, fraction = text.partition(".")
    if not whole.isdigit() or (fraction and not fraction.isdigit()) or text.endswith("."):
        raise bad_request(
            "invalid_amount", f'{field} must be a decimal string such as "12.50"', field=field
        )
    if len(fraction) > digits:
        raise bad_request(
            "invalid_amount",
            f"{field} {text!r} has more decimals than {currency} allows ({digits})",
            field=field,
            currency=currency,
        )
    try:
        return Money.parse(text, currency)
    except errors.LedgerError as e:
        raise bad_request("invalid_amount", e.message, field=field) from None


def parse_basis_points(text: str, field: str) -> int:
    """A fraction such as ``"0.25"`` (25%) as basis points (2500); at most four decimals."""
    whole, _, fraction = text.partition(".")
    if not whole.isdigit() or (fraction and not fraction.isdigit()) or len(fraction) > 4:
        raise bad_request(
            "invalid_value",
            f'{field} must be a fraction such as "0.25" (25%), at most four decimals',
            field=field,
        )
    points = int(whole) * 10_000 + int(fraction.ljust(4, "0") or "0")
    if points > 10_000:
        raise bad_request("invalid_value", f"{field} cannot be above 1 (100%)", field=field)
    return points


def show(minor: int | None, currency: str) -> str | None:
    """Minor units as the contract's decimal string (``None`` stays ``None``)."""
    return None if minor is None else format_minor(int(minor), currency)
