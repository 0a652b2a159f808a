"""docs/adapters.md: its code runs, and it names every command and config table it should."""

from __future__ import annotations

import re
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any

from outbox_helpers import engine_for, open_account

from adapters.outbox import Adapter
from ledger.clock import MovableClock
from ledger.services import LedgerService

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "adapters.md"


def python_blocks() -> list[str]:
    """The Python samples of the "Writing an adapter" section."""
    section = DOC.read_text().split("## Writing an adapter\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_the_adapter_in_the_docs_delivers_a_letter_once(
    svc: LedgerService, clock: MovableClock
) -> None:
    """The Postcards example is an Adapter: a queued letter is printed once and recorded sent."""
    namespace: dict[str, Any] = {}
    for block in python_blocks():
        exec(compile(block, str(DOC), "exec"), namespace)
    postcards = namespace["Postcards"]()
    assert isinstance(postcards, Adapter)
    account_id = open_account(svc)
    queued = svc.request_message(
        account_id, channel="letter", template="reminder", purpose="remedy_notice"
    )
    engine = engine_for(svc, postcards, clock=clock)
    assert engine.run().delivered["postcards"] == 1
    clock.advance(timedelta(minutes=5))
    assert engine.run().anything is False
    assert svc.get_account(account_id).messages[queued.message_id]["status"] == "sent"
    assert list(postcards.printed.values()) == ["card-1"]


def test_the_docs_name_every_outbox_command_and_adapter_table() -> None:
    """Commands and the example config's tables all appear in docs/adapters.md."""
    text = DOC.read_text()
    for command in ("outbox run", "outbox list", "outbox show", "outbox retry"):
        assert f"arrears {command}" in text
    with (ROOT / "arrears.example.toml").open("rb") as f:
        tables = tomllib.load(f)["adapters"]
    for table in tables:
        assert f"[adapters.{table}" in text, table
