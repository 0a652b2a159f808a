"""Money as integer minor units plus an ISO 4217 code.

Floats never enter: amounts arrive as decimal strings at the edges and are
converted exactly, using the currency's own exponent (JPY 0, USD 2, BHD 3).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from iso4217 import Currency

from ledger.errors import CurrencyMismatch, InvalidAmount, UnknownCurrency

# ASCII digits only: ``\d`` would also accept e.g. Arabic-Indic or full-width digits.
_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")
#: Longer amounts are refused as input rather than crashing ``int()`` (4300-digit limit).
_MAX_DIGITS = 4000


def exponent(currency: str) -> int:
    """Minor-unit digits of an ISO 4217 currency.

    Codes without a minor unit (precious metals, the SDR, test and "no currency"
    codes such as XAU, XDR, XTS, XXX) are refused: they cannot hold a debt.
    """
    # Checked before the cache: an unhashable value must be refused, not crash it.
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency):
        raise UnknownCurrency(
            f"{currency!r} is not an ISO 4217 currency code (three capital letters)",
            currency=str(currency),
        )
    return _exponent(str(currency))


@cache
def _exponent(currency: str) -> int:
    try:
        digits = Currency(currency).exponent
    except ValueError:
        raise UnknownCurrency(
            f"{currency} is not an ISO 4217 currency code", currency=currency
        ) from None
    if digits is None:
        raise UnknownCurrency(
            f"{currency} has no minor unit (metal, SDR or test code); it cannot hold a debt",
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
                f'amount must be a decimal string such as "12.50", got {type(text).__name__}',
                value=repr(text),
            )
        stripped = text.strip()
        if len(stripped) > _MAX_DIGITS or not _DECIMAL.fullmatch(stripped):
            raise InvalidAmount(
                f"{text!r} is not a decimal amount (expected digits with an optional "
                f"'.' and up to {digits} decimals)",
                value=text,
            )
        # Exact integer arithmetic: Decimal.scaleb rounds to the context precision
        # (28 digits), which silently corrupted long amounts.
        negative = stripped.startswith("-")
        whole, _, frac = stripped.lstrip("-").partition(".")
        frac = frac.rstrip("0")
        if len(frac) > digits:
            raise InvalidAmount(
                f"{text} has more decimals than {currency} allows ({digits})",
                value=text,
                currency=currency,
            )
        minor = int(whole) * 10**digits + int(frac.ljust(digits, "0") or "0")
        return cls(-minor if negative else minor, currency)

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
