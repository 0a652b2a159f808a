"""What every built-in rule pack shares: its verdicts' shape and settable numbers.

A pack answers each rule with allow or block, under ``<pack>.<rule>``, its
version and the rule's citation; ``verdicts_for`` builds that function once per
pack.  A pack's numbers are a frozen dataclass of defaults; ``Settable`` holds the
ones the hook uses now, which the composition root may change from the config
file (``plugins.gate.configure_packs``) and ``configure()`` restores.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from plugins.types import Outcome, Verdict

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    P = TypeVar("P", bound=DataclassInstance)
else:
    P = TypeVar("P")


def verdicts_for(
    pack: str, version: str, citations: Mapping[str, str]
) -> Callable[[str, bool, str], Verdict]:
    """``verdict(rule, blocked, reason)`` for one pack."""

    def verdict(rule: str, blocked: bool, reason: str) -> Verdict:
        outcome: Outcome = "block" if blocked else "allow"
        return Verdict(outcome, f"{pack}.{rule}", version, reason, citations[rule])

    return verdict


class Settable(Generic[P]):
    """A pack's parameters: the defaults, and the ones its hook uses now."""

    def __init__(self, defaults: P) -> None:
        self.defaults = defaults
        self.active = defaults

    def configure(self, **overrides: Any) -> P:
        """The defaults with ``overrides`` become active (and are returned); no overrides
        restores the defaults.  ``TypeError`` for an unknown name, ``ValueError`` for a
        bad value (the parameters validate themselves)."""
        self.active = replace(self.defaults, **overrides)
        return self.active
