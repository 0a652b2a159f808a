"""docs/events.md is the event catalogue auditors and integrators read: it must match the code."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from eventsourcing.domain import Aggregate

from ledger.domain.account import Account
from ledger.domain.debtor import Debtor
from ledger.tamper.seal import SealLog

DOC = Path(__file__).resolve().parent.parent / "docs" / "events.md"
BASE_FIELDS = {"originator_id", "originator_version", "timestamp", "originator_topic"}


def event_classes(aggregate: type[Aggregate]) -> dict[str, type]:
    found = {}
    for name, value in vars(aggregate).items():
        if (
            isinstance(value, type)
            and dataclasses.is_dataclass(value)
            and issubclass(value, aggregate.Event | Aggregate.Created)
            and name not in ("Event", "Created")
        ):
            found[name] = value
    return found


def documented(aggregate: str) -> dict[str, tuple[int, list[str]]]:
    text = DOC.read_text()
    section = text.split(f"## {aggregate}\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for match in re.finditer(r"^\| `(\w+)` \| (\d+) \| (.*) \|$", section, re.M):
        fields = re.findall(r"`(\w+)`", match.group(3))
        rows[match.group(1)] = (int(match.group(2)), fields)
    return rows


@pytest.mark.parametrize("aggregate", [Account, Debtor, SealLog], ids=lambda a: a.__name__)
def test_every_event_is_documented_with_its_version_and_fields(aggregate: type[Aggregate]) -> None:
    """Each event class appears in docs/events.md with its schema version and exact fields."""
    expected = {
        name: (
            getattr(cls, "class_version", 1),
            [f.name for f in dataclasses.fields(cls) if f.name not in BASE_FIELDS],
        )
        for name, cls in event_classes(aggregate).items()
    }
    assert documented(aggregate.__name__) == expected


def test_every_upcaster_is_in_the_schema_history() -> None:
    """Each event above version 1 has its upcasters and a line in the schema history."""
    history = DOC.read_text().split("## Schema history", 1)[1]
    for aggregate in (Account, Debtor, SealLog):
        for name, cls in event_classes(aggregate).items():
            version = getattr(cls, "class_version", 1)
            for v in range(1, version):
                assert hasattr(cls, f"upcast_v{v}_v{v + 1}"), f"{name} lacks upcast_v{v}_v{v + 1}"
            if version > 1:
                assert f"`{aggregate.__name__}.{name}` v{version}" in history
