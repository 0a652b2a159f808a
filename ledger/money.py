"""Money as integer minor units plus an ISO 4217 code.

Floats never enter: amounts arrive as decimal strings at the edges and are
converted exactly, using the currency's own exponent (JPY 0, USD 2, BHD 3).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache

from iso4217 import Currency

from ledger.errors import CurrencyMismatch, InvalidAmount, UnknownCurrency

_DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")


@cache
def exponent(currency: str) -> int:
    """Minor-unit digits of an ISO 4217 currency; funds and metals are refused."""
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency):
        raise UnknownCurrency(
            f"{currency!r} is not an ISO 4217 currency code (three capital letters)",
            currency=str(currency),
        )
    try:
        digits = Currency(currency).exponent
    except ValueError:
        raise UnknownCurrency(
            f"{currency} is not an ISO 4217 currency code", currency=currency
        ) from None
    if digits is None:
        raise UnknownCurrency(
            f"{currency} has no minor unit (metal or fund code); it cannot hold a debt",
            currency=currency,
        )
    return int(digits)


def check_currency(currency: str) -> str:
    exponent(currency)
    return currency


@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount: ``minor`` units of ``currency``."""

    minor: int
    currency: str

    def __post_init__(self) -> None:
        if type(self.minor) is not int:
            raise InvalidAmount(
                f"amount must be an integer number of minor units, not {type(self.minor).__name__}"
            )
        check_currency(self.currency)

    @classmethod
    def parse(cls, text: str, currency: str) -> Money:
        """Parse a decimal string such as ``"1200.00"`` without ever using a float."""
        digits = exponent(currency)
        if not isinstance(text, str):
            raise InvalidAmount(
                f"amount must be a decimal string such as \"12.50\", got {type(text).__name__}",
                value=repr(text),
            )
        stripped = text.strip()
        if not _DECIMAL.match(stripped):
            raise InvalidAmount(
                f"{text!r} is not a decimal amount (expected digits with an optional "
                f"'.' and up to {digits} decimals)",
                value=text,
            )
        try:
            value = Decimal(stripped)
        except InvalidOperation:  # pragma: no cover - regex already guards
            raise InvalidAmount(f"{text!r} is not a decimal amount", value=text) from None
        scaled = value.scaleb(digits)
        if scaled != scaled.to_integral_value():
            raise InvalidAmount(
                f"{text} has more decimals than {currency} allows ({digits})",
                value=text,
                currency=currency,
            )
        return cls(int(scaled), currency)

    def to_decimal_string(self) -> str:
        """The edge representation: ``"1200.00"``, with the currency's own decimals."""
        return format_minor(self.minor, self.currency)

    def __str__(self) -> str:
        return f"{self.to_decimal_string()} {self.currency}"

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatch(
                f"cannot combine {self.currency} with {other.currency}",
                expected=self.currency,
                got=other.currency,
            )

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor - other.minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.minor, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.minor < other.minor

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.minor <= other.minor

    @property
    def is_positive(self) -> bool:
        return self.minor > 0


def format_minor(minor: int, currency: str) -> str:
    digits = exponent(currency)
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10**digits)
    if digits == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{frac:0{digits}d}"
