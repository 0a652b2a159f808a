"""Bulk replay: rebuild every aggregate from the stored events in one ordered scan.

Loading accounts one by one costs a query per account; an auditor's full replay
(the portfolio summary, the report cross-check) reads the events table once,
grouped by stream, and folds each stream through the same ``apply`` code the
live system uses.  Memory holds one stream at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ledger.application import Ledger
from ledger.readmodels.engine import EventDecoder


def iter_streams(ledger: Ledger) -> Iterator[list[Any]]:
    """Each stream's domain events (upcast, in version order), one stream at a time."""
    decoder = EventDecoder(ledger)
    stream: list[Any] = []
    current: Any = None
    for raw_id, version, topic, state in ledger.rows().iter_events():
        if raw_id != current:
            if stream:
                yield stream
            stream, current = [], raw_id
        stream.append(decoder(0, raw_id, version, topic, state).event)
    if stream:
        yield stream


def replay_all(ledger: Ledger) -> Iterator[Any]:
    """Yield each aggregate (accounts, debtors, seal log) as rebuilt from its events."""
    for stream in iter_streams(ledger):
        aggregate: Any = None
        for event in stream:
            aggregate = event.mutate(aggregate)
        yield aggregate
