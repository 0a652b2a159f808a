"""The plugin test kit: pytest fixtures and helpers for testing an Arrears plugin.

Arrears registers this module as the pytest plugin ``arrears`` (entry-point group
``pytest11``), so once Arrears is installed every pytest run has these fixtures;
nothing to import, nothing to add to ``conftest.py``.  Override ``arrears_plugin``
in your test module (or ``conftest.py``) to return the plugin under test::

    @pytest.fixture
    def arrears_plugin() -> object:
        return my_package.plugin

Fixtures
--------
- ``arrears_plugin`` — the plugin under test; **override it** (by default the test is
  skipped, saying so).
- ``arrears_plugin_name`` — the name it is registered under (default ``"plugin-under-test"``).
- ``arrears_plugin_manager`` — a plugin manager holding only that plugin: no built-ins,
  no entry points, and ``ARREARS_DISABLE_PLUGINS`` ignored.
- ``arrears_clock`` — a ``MovableClock`` at ``START`` (Monday 2 March 2026, 14:00 UTC,
  09:00 in New York), advancing one second per reading.
- ``arrears_service`` — a ``LedgerService`` on a throwaway SQLite store in ``tmp_path``,
  wired with that clock and manager, closed after the test.
- ``arrears_verdicts`` — the helpers below, for those who prefer a fixture to an import.

Helpers (``from plugins.testkit import judge, assert_blocked, ...``)
--------------------------------------------------------------------
- ``account_view(**overrides)`` / ``debtor_view(**overrides)`` — complete views as the
  contact gate builds them (``docs/contact-views.md``): an active US account in New
  York with no flags and no contacts.
- ``judge(pm_or_plugin, ...)`` — call ``arrears_contact_rules`` once, get the flat
  list of verdicts.
- ``assert_blocked`` / ``assert_allowed`` / ``assert_warned`` / ``assert_no_verdict`` —
  check one rule's verdict; a failure lists every verdict returned.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import pluggy
import pytest

from ledger.clock import MovableClock, ensure_utc
from plugins.manager import ArrearsPluginManager, build_plugin_manager, call_hook
from plugins.types import Outcome, Verdict

if TYPE_CHECKING:
    from ledger.services import LedgerService

#: The moment ``arrears_clock`` starts at and ``judge`` uses by default: a Monday,
#: 09:00 in New York (the default debtor's zone), inside every US calling window.
START = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
DEFAULT_PLUGIN_NAME = "plugin-under-test"
OVERRIDE_HINT = (
    "arrears_plugin is not overridden: define a fixture named arrears_plugin in your test "
    "module or conftest.py that returns the plugin under test"
)


# ---------------------------------------------------------------------- views


def account_view(**overrides: Any) -> dict[str, Any]:
    """A complete ``account`` view: an active US-NY account, no flags, no contacts.

    Every key of ``docs/contact-views.md`` is present; ``overrides`` replace keys whole.
    """
    view: dict[str, Any] = {
        "id": "00000000-0000-4000-8000-000000000001",
        "creditor": "acme-bank",
        "reference": "ACC-0001",
        "status": "active",
        "currency": "USD",
        "balance": {"principal": 100_000, "interest": 15_000, "fees": 5_000},
        "total_balance": 120_000,
        "jurisdiction": "US-NY",
        "ceased": False,
        "disputes": {},
        "attorney": None,
        "bankrupt": False,
        "deceased": False,
        "consents": {},
        "time_barred": False,
        "limitation_expires_on": None,
        "contacts": [],
        "breathing_space": None,
        "in_breathing_space": False,
        "contact_preferences": {
            "channels": None,
            "refused_channels": [],
            "window_start": None,
            "window_end": None,
        },
        "call_consents": [],
    }
    view.update(overrides)
    return view


def debtor_view(**overrides: Any) -> dict[str, Any]:
    """A complete ``debtor`` view: in ``America/New_York``, jurisdiction ``"US-NY"``."""
    view: dict[str, Any] = {
        "time_zone": "America/New_York",
        "time_zones": [],
        "jurisdiction": "US-NY",
    }
    view.update(overrides)
    return view


# ---------------------------------------------------------------------- judge


def _manager(pm_or_plugin: object) -> pluggy.PluginManager:
    if isinstance(pm_or_plugin, pluggy.PluginManager):
        return pm_or_plugin
    return build_plugin_manager(
        builtins=False,
        entry_points=False,
        disabled=(),
        extra=[(DEFAULT_PLUGIN_NAME, pm_or_plugin)],
    )


def judge(
    pm_or_plugin: object,
    *,
    account: Mapping[str, Any] | None = None,
    debtor: Mapping[str, Any] | None = None,
    channel: str = "phone",
    purpose: str = "collection",
    at: datetime | None = None,
    party: str = "debtor",
    to: str | None = None,
) -> list[Verdict]:
    """Every verdict ``arrears_contact_rules`` returns for one proposed contact.

    ``pm_or_plugin`` is a plugin manager (e.g. ``arrears_plugin_manager``) or a bare
    plugin, registered alone.  Views default to ``account_view()``/``debtor_view()``;
    given only a debtor, the default account takes its jurisdiction.  ``at`` defaults
    to ``START`` and is converted to UTC as the gate does (a naive one is refused).
    The plugin sees read-only views, as in production.
    """
    debtor = debtor_view() if debtor is None else debtor
    if account is None:
        account = account_view(jurisdiction=debtor.get("jurisdiction"))
    batches = call_hook(
        _manager(pm_or_plugin),
        "arrears_contact_rules",
        account=MappingProxyType(dict(account)),
        debtor=MappingProxyType(dict(debtor)),
        channel=channel,
        purpose=purpose,
        at=ensure_utc(START if at is None else at),
        party=party,
        to=to,
    )
    verdicts: list[Verdict] = []
    for batch in batches:
        for item in batch or ():
            if not isinstance(item, Verdict):
                raise AssertionError(
                    f"arrears_contact_rules returned {item!r}; every item must be a plugins.Verdict"
                )
            verdicts.append(item)
    return verdicts


# ----------------------------------------------------------------- assertions


def describe(verdicts: Sequence[Verdict]) -> str:
    """One line per verdict, for failure messages."""
    if not verdicts:
        return "no verdicts were returned"
    lines = [f"{len(verdicts)} verdict(s) returned:"]
    lines += [
        f"  {v.outcome:<5} {v.rule_id} v{v.rule_version}: {v.reason} [{v.citation}]"
        for v in verdicts
    ]
    return "\n".join(lines)


def assert_verdict(verdicts: Sequence[Verdict], rule_id: str, outcome: Outcome) -> Verdict:
    """Exactly one verdict of ``rule_id``, with ``outcome``; returns it for further checks."""
    __tracebackhide__ = True  # a failure points at the test, not at the kit
    mine = [v for v in verdicts if v.rule_id == rule_id]
    if not mine:
        raise AssertionError(
            f"expected rule {rule_id!r} to {outcome}, but it gave no verdict\n{describe(verdicts)}"
        )
    if len(mine) > 1:
        raise AssertionError(
            f"expected one verdict of rule {rule_id!r}, got {len(mine)} (a rule that applies "
            f"returns exactly one)\n{describe(verdicts)}"
        )
    if mine[0].outcome != outcome:
        raise AssertionError(
            f"expected rule {rule_id!r} to {outcome}, but it gave {mine[0].outcome!r}: "
            f"{mine[0].reason}\n{describe(verdicts)}"
        )
    return mine[0]


def assert_blocked(verdicts: Sequence[Verdict], rule_id: str) -> Verdict:
    """``rule_id`` blocked the contact; returns its verdict."""
    __tracebackhide__ = True
    return assert_verdict(verdicts, rule_id, "block")


def assert_allowed(verdicts: Sequence[Verdict], rule_id: str) -> Verdict:
    """``rule_id`` allowed the contact; returns its verdict."""
    __tracebackhide__ = True
    return assert_verdict(verdicts, rule_id, "allow")


def assert_warned(verdicts: Sequence[Verdict], rule_id: str) -> Verdict:
    """``rule_id`` warned about the contact; returns its verdict."""
    __tracebackhide__ = True
    return assert_verdict(verdicts, rule_id, "warn")


def assert_no_verdict(verdicts: Sequence[Verdict], rule_id: str) -> None:
    """``rule_id`` did not apply: it returned no verdict."""
    __tracebackhide__ = True
    mine = [v for v in verdicts if v.rule_id == rule_id]
    if mine:
        raise AssertionError(
            f"expected no verdict from rule {rule_id!r}, but it gave {mine[0].outcome!r}: "
            f"{mine[0].reason}\n{describe(verdicts)}"
        )


class VerdictHelpers:
    """The helpers above as one object (the ``arrears_verdicts`` fixture)."""

    account_view = staticmethod(account_view)
    debtor_view = staticmethod(debtor_view)
    judge = staticmethod(judge)
    describe = staticmethod(describe)
    assert_verdict = staticmethod(assert_verdict)
    assert_blocked = staticmethod(assert_blocked)
    assert_allowed = staticmethod(assert_allowed)
    assert_warned = staticmethod(assert_warned)
    assert_no_verdict = staticmethod(assert_no_verdict)


# ------------------------------------------------------------------- fixtures


@pytest.fixture
def arrears_plugin() -> object:
    """The plugin under test: override this fixture to return it."""
    pytest.skip(OVERRIDE_HINT)


@pytest.fixture
def arrears_plugin_name() -> str:
    """The name the plugin under test is registered under."""
    return DEFAULT_PLUGIN_NAME


@pytest.fixture
def arrears_plugin_manager(
    arrears_plugin: object, arrears_plugin_name: str
) -> ArrearsPluginManager:
    """A plugin manager holding only the plugin under test (env and installs ignored)."""
    return build_plugin_manager(
        builtins=False,
        entry_points=False,
        disabled=(),  # ARREARS_DISABLE_PLUGINS must not hide the plugin under test
        extra=[(arrears_plugin_name, arrears_plugin)],
    )


@pytest.fixture
def arrears_clock() -> MovableClock:
    """A clock at ``START`` (2026-03-02 14:00 UTC) that advances one second per reading."""
    return MovableClock(START, tick=timedelta(seconds=1))


@pytest.fixture
def arrears_service(
    tmp_path: Path, arrears_clock: MovableClock, arrears_plugin_manager: ArrearsPluginManager
) -> Iterator[LedgerService]:
    """A ledger service on a throwaway SQLite store, wired with the plugin under test."""
    from bootstrap import build_service  # imported late: most runs never need a ledger

    service = build_service(
        f"sqlite:///{tmp_path / 'arrears-testkit.db'}",
        clock=arrears_clock,
        plugins=arrears_plugin_manager,
    )
    try:
        yield service
    finally:
        service.ledger.close()


@pytest.fixture
def arrears_verdicts() -> VerdictHelpers:
    """``account_view``, ``debtor_view``, ``judge`` and the assertions, as a fixture."""
    return VerdictHelpers()
