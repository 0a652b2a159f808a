"""The sale price of each account, in integer minor units, never a float.

A portfolio price is split in proportion to the accounts' balances (what a
buyer pays is a rate on face value) by the largest-remainder method: every
account gets the floor of its share, and the leftover minor units go one each
to the largest remainders, ties in the sale's account order.  The parts always
add up to the price exactly, and the same inputs always give the same split.
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger import errors
from ledger.money import Money


def parse_price(text: str, currencies: set[str]) -> Money:
    """``"1500.00"`` in the sale's one currency, or ``"1500.00 USD"``."""
    amount, _, currency = text.strip().partition(" ")
    currency = currency.strip().upper()
    if len(currencies) != 1:
        listed = ", ".join(sorted(currencies)) or "none"
        raise errors.ValidationError(
            f"a priced sale must be in one currency; these accounts are in {listed}: "
            "export each currency separately",
            field="price",
        )
    (sale_currency,) = currencies
    if currency and currency != sale_currency:
        raise errors.CurrencyMismatch(
            f"the accounts are in {sale_currency}, the price is in {currency}",
            expected=sale_currency,
            got=currency,
        )
    price = Money.parse(amount, sale_currency)
    if price.minor < 0:
        raise errors.InvalidAmount("a sale price cannot be negative", field="price")
    return price


def split(total: int, weights: Sequence[int]) -> list[int]:
    """``total`` in parts proportional to ``weights`` (equal parts if they are all zero)."""
    if not weights:
        return []
    if total < 0:
        raise errors.InvalidAmount("a sale price cannot be negative", field="price")
    clean = [max(0, w) for w in weights]
    if sum(clean) == 0:
        clean = [1] * len(clean)
    whole = sum(clean)
    parts = [total * w // whole for w in clean]
    remainders = [total * w % whole for w in clean]
    leftover = total - sum(parts)
    for index in sorted(range(len(clean)), key=lambda i: (-remainders[i], i))[:leftover]:
        parts[index] += 1
    return parts


def account_prices(
    order: Sequence[str],
    balances: dict[str, int],
    fixed: dict[str, int],
    *,
    total: int | None = None,
    per_account: int | None = None,
) -> dict[str, int]:
    """Each account's price; ``fixed`` holds prices already recorded in this sale.

    On a re-run after some accounts were sold, the rest share what is left of the
    portfolio price, so the recorded prices still add up to it exactly.
    """
    if per_account is not None:
        return {key: fixed.get(key, per_account) for key in order}
    if total is None:
        return {}
    open_keys = [key for key in order if key not in fixed]
    left = total - sum(fixed.get(key, 0) for key in order)
    if left < 0:
        raise errors.ValidationError(
            "the accounts already sold in this sale were recorded at more than the price given",
            field="price",
        )
    parts = split(left, [balances[key] for key in open_keys])
    prices = {key: fixed[key] for key in order if key in fixed}
    prices.update(zip(open_keys, parts, strict=True))
    return prices
