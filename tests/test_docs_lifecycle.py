"""docs/lifecycle.md must say exactly what ledger/domain/lifecycle.py enforces."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ledger.domain.account import Account
from ledger.domain.lifecycle import CLOSE_REASONS, TRANSITIONS, Status
from ledger.services import LedgerService

DOC = Path(__file__).resolve().parents[1] / "docs" / "lifecycle.md"


def table(header: str) -> list[list[str]]:
    """The rows of the markdown table whose first header cell is ``header``, backticks removed."""
    lines = DOC.read_text().splitlines()
    for i, line in enumerate(lines):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.lstrip().startswith("|") and cells[0] == header:
            rows = []
            for row in lines[i + 2 :]:
                if not row.lstrip().startswith("|"):
                    break
                rows.append([c.strip().strip("`") for c in row.strip().strip("|").split("|")])
            return rows
    pytest.fail(f"no table with a {header!r} column in {DOC}")


def test_transition_table_matches_the_code() -> None:
    """Every documented (from, action, to) row is an allowed transition, and none is missing."""
    rows = table("From")
    documented = {(Status(f), action): Status(to) for f, action, to in rows}
    assert len(documented) == len(rows), "a transition is listed twice"
    assert documented == TRANSITIONS


def test_documented_actions_are_service_commands() -> None:
    """Each action names a LedgerService method, except legal_closed (change_legal_status)."""
    actions = {action for _, action, _ in table("From")}
    missing = {a for a in actions if not hasattr(LedgerService, a)}
    assert missing == {"legal_closed"}
    assert hasattr(LedgerService, "change_legal_status")


def test_status_table_lists_every_status() -> None:
    """The statuses table names each Status once; sold and closed are final and not worked."""
    rows = table("Status")
    assert [r[0] for r in rows] == [s.value for s in Status]
    not_worked = {r[0] for r in rows if r[2] == "no"}
    assert not_worked == {"sold", "closed"}
    assert all(source.value not in not_worked for source, _ in TRANSITIONS)  # final states


def test_close_reasons_are_the_accepted_ones() -> None:
    """The close reasons in the doc are exactly those close() accepts."""
    text = DOC.read_text()
    section = text[text.index("## Close reasons") : text.index("## Sold and closed")]
    first_paragraph = section.split("Closing as")[0]
    assert set(re.findall(r"`([a-z_]+)`", first_paragraph)) - {"close"} == CLOSE_REASONS


def test_flag_table_matches_the_account_flags_in_order() -> None:
    """The documented flags are exactly those an account can show, in the order it shows them."""
    account = Account.__new__(Account)
    Account.__init__(account)
    account.disputes = {"d": {"status": "awaiting_verification"}}
    account.complaints = {"c": "open"}
    account.ceased = True
    account.attorney = {"firm": "Lee & Partners", "reference": None}
    account.bankrupt = True
    account.deceased = True
    assert [r[0] for r in table("Flag")] == account.flags
