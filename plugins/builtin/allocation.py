"""The default payment waterfall: fees, then interest, then principal."""

from __future__ import annotations

from collections.abc import Sequence

from plugins.hookspecs import hookimpl

DEFAULT_ORDER: tuple[str, ...] = ("fees", "interest", "principal")


@hookimpl(trylast=True)
def arrears_allocation_order(creditor: str) -> Sequence[str] | None:
    """Every creditor gets the usual contractual order unless another plugin says otherwise."""
    return DEFAULT_ORDER
