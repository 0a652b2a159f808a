"""What an adapter is: the contract between the outbox engine and one outside partner.

An adapter is a projection over the event log that acts outside.  The engine
hands it every committed event; ``jobs`` says which ones call for an outside
action (a queued text, a referral, a placement) and returns one ``Job`` each,
keyed by an idempotency key derived from the event.  The engine stores each job
once, then calls ``deliver`` until it returns (or the job is dead-lettered) and
records the outcome through ``succeeded`` or ``dead``.

Delivery is at-least-once: ``deliver`` may run again for a job the partner
already has (the worker died before it could mark the job delivered), so the
job's ``key`` goes to the partner, which deduplicates by it.  ``succeeded`` and
``dead`` must be idempotent too: they record ledger events that the ledger
itself records only once.

A job's ``payload`` is stored in the outbox table, beside the events, and shown
by ``arrears outbox show``: it holds references (message id, template name),
never personal data, which ``deliver`` resolves when it runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from uuid import UUID

if TYPE_CHECKING:
    from ledger.services import LedgerService


@dataclass(frozen=True)
class Job:
    """One outside action to take at least once.

    ``payload`` must be JSON (strings, numbers, booleans, None, lists, mappings):
    it is stored as JSON and handed back as plain ``dict``/``list`` values.
    """

    key: str  # stable idempotency key derived from the event (``event_key``)
    adapter: str  # the adapter's name
    account_id: UUID
    position: int  # notification position of the event the job came from
    payload: Mapping[str, Any] = field(default_factory=dict)


class DeliveryError(Exception):
    """``deliver`` failed; the engine retries later with backoff.

    The message is stored and logged (scrubbed), and after the last attempt it
    becomes the ledger's failure reason: never put a phone number, an e-mail
    address or a name in it.  ``retry_after`` (seconds), when the partner said
    when to come back (HTTP ``Retry-After``), delays the next attempt at least
    that long.
    """

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentDeliveryError(DeliveryError):
    """``deliver`` can never succeed as asked (an invalid number, a refused recipient):
    the job is dead-lettered at once, without further attempts."""

    retryable = False


@runtime_checkable
class Adapter(Protocol):
    """One outside partner, served by the outbox engine (``adapters.outbox.engine``)."""

    name: str

    def jobs(self, event: Any, position: int) -> Sequence[Job]:
        """The outside actions ``event`` calls for (usually none); must be deterministic."""
        ...

    def deliver(self, job: Job, service: LedgerService) -> str:
        """Do it; return the partner's reference.  Raise ``DeliveryError`` to retry later,
        ``PermanentDeliveryError`` to give up."""
        ...

    def succeeded(self, job: Job, reference: str, service: LedgerService) -> None:
        """Record the outcome of a delivery that returned (idempotently)."""
        ...

    def dead(self, job: Job, error: str, service: LedgerService) -> None:
        """Record that the job was dead-lettered; ``error`` is scrubbed of personal data."""
        ...


def event_key(event: Any, adapter: str) -> str:
    """The idempotency key of ``adapter``'s job for ``event``: stable across replays."""
    return f"{event.originator_id}:{event.originator_version}:{adapter}"
