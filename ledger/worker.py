"""The worker: keeps every read model current, runs the time processes on a clock tick,
and delivers committed events to observers.

It is the projection engine's ``follow`` loop (catch up, then wait for new
events) with the observers (``ledger.observers``) served after every catch-up
and the time processes (``ledger.processes``) once per tick, both hung off its
idle hook.  All three are safe to run in several workers at once and to kill at
any moment: a projection batch commits with its position, an observer's
position moves only after its call (at-least-once), and each account's time
events are one save decided on fresh state.

Stopping: ``stop()`` (or SIGTERM / SIGINT once ``install_signal_handlers`` ran)
ends the loop.  During a tick the worker finishes the account in hand, and
while delivering the observer call in hand, then stops; anywhere else the
signal interrupts at once, which rolls back the projection batch in progress
(it is redone by the next run).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

import structlog

from ledger.observers import DispatchReport, Observer, ObserverDispatcher, RetryPolicy
from ledger.processes import Order, TickReport, TimePolicy
from ledger.services import LedgerService

log = structlog.get_logger("arrears.worker")

#: Work the worker runs after the observers on every pass (the adapters' outbox): called
#: with ``stop``, it must return soon after ``stop()`` turns true.  The ledger knows
#: nothing of what it does; the composition root hands it in.
DeliveryPass = Callable[[Callable[[], bool]], object]


class WorkerStopping(BaseException):
    """Raised by the signal handler to interrupt a wait or a projection batch."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Worker:
    """Read models, observers and time processes, on one ledger service."""

    def __init__(
        self,
        service: LedgerService,
        policy: TimePolicy | None = None,
        *,
        tick_seconds: float = 60.0,
        poll_interval: float = 0.5,
        order: Order = "shuffle",
        on_tick: Callable[[TickReport], None] | None = None,
        observers: Sequence[Observer] = (),
        retry: RetryPolicy | None = None,
        on_dispatch: Callable[[DispatchReport], None] | None = None,
        deliveries: Sequence[DeliveryPass] = (),
    ) -> None:
        if tick_seconds <= 0 or poll_interval <= 0:
            raise ValueError("tick and poll interval must be positive")
        self.service = service
        self.policy = policy or TimePolicy()
        self.tick_seconds = tick_seconds
        self.poll_interval = min(poll_interval, tick_seconds)
        self.order: Order = order
        self.on_tick = on_tick
        self.observers = list(observers)
        self.retry = retry
        self.on_dispatch = on_dispatch
        self.last_dispatch: DispatchReport | None = None
        self.deliveries = list(deliveries)
        self._dispatcher: ObserverDispatcher | None = None
        self.ticks = 0
        self.stopped_by: str | None = None
        self._stop = threading.Event()
        self._in_tick = False
        self._in_dispatch = False
        self._interruptible = False  # inside a catch-up or a wait: a signal may raise
        self._next_tick = 0.0

    # ------------------------------------------------------------ control

    def stop(self) -> None:
        """Ask the loop to end: after the account or observer call in hand, else at once."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def install_signal_handlers(self) -> dict[int, Any]:
        """SIGTERM and SIGINT stop the worker cleanly; returns the handlers replaced."""
        previous: dict[int, Any] = {}
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, self._on_signal)
        return previous

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopped_by = signal.Signals(signum).name
        self.stop()
        if self._interruptible and not (self._in_tick or self._in_dispatch):
            raise WorkerStopping(signum)

    # ------------------------------------------------------------ running

    def tick(self) -> TickReport:
        """Run the time processes once, as of the service clock (read models already current)."""
        self._in_tick = True
        try:
            report = self.service.run_time_processes(
                self.policy.grace_days,
                self.policy.default_after,
                order=self.order,
                stop=self._stop.is_set,
                catch_up=False,
            )
        finally:
            self._in_tick = False
        self.ticks += 1
        if self.on_tick is not None:
            self.on_tick(report)
        return report

    @property
    def dispatcher(self) -> ObserverDispatcher | None:
        """The observers' dispatcher, on the read models' store; None without observers."""
        if not self.observers:
            return None
        if self._dispatcher is None:
            self._dispatcher = ObserverDispatcher(
                self.service.ledger,
                self.observers,
                store=self.service.read_models().store,
                clock=self.service.clock,
                retry=self.retry,
            )
        return self._dispatcher

    def dispatch(self) -> DispatchReport | None:
        """Deliver the events each observer has not had yet (None: there are no observers)."""
        dispatcher = self.dispatcher
        if dispatcher is None:
            return None
        self._in_dispatch = True
        try:
            report = dispatcher.dispatch(stop=self._stop.is_set)
        finally:
            self._in_dispatch = False
        self.last_dispatch = report
        if self.on_dispatch is not None and report.anything:
            self.on_dispatch(report)
        return report

    def deliver(self) -> None:
        """Run the delivery passes (the outbox), each of which may be stopped between jobs."""
        if not self.deliveries:
            return
        self._in_dispatch = True  # a signal stops them between jobs, never mid-delivery
        try:
            for delivery in self.deliveries:
                if self._stop.is_set():
                    break
                delivery(self._stop.is_set)
        finally:
            self._in_dispatch = False

    def run_once(self) -> TickReport:
        """Catch every read model up, run one tick, catch up with what the tick recorded,
        and deliver every event to the observers."""
        engine = self.service.read_models().engine
        self._interruptible = True
        try:
            engine.catch_up()
            report = self.tick()
            engine.catch_up()
            self.dispatch()
            self.deliver()
        except WorkerStopping:
            log.info("worker_stopped", signal=self.stopped_by)
            raise
        finally:
            self._interruptible = False
        return report

    def run(self) -> None:
        """Follow the ledger until stopped, with a tick every ``tick_seconds``."""
        engine = self.service.read_models().engine
        self._next_tick = 0.0
        log.info(
            "worker_started",
            tick_seconds=self.tick_seconds,
            grace_days=self.policy.grace_days,
            default_after=self.policy.default_after,
        )
        self._interruptible = True
        try:
            engine.follow(
                stop=self._stop.is_set, poll_interval=self.poll_interval, on_idle=self._on_idle
            )
        except WorkerStopping:
            pass
        finally:
            self._interruptible = False
        log.info("worker_stopped", signal=self.stopped_by, ticks=self.ticks)

    def _on_idle(self) -> None:
        if self._stop.is_set():
            return
        self.dispatch()
        self.deliver()
        if self._stop.is_set() or time.monotonic() < self._next_tick:
            return
        self.tick()
        self._next_tick = time.monotonic() + self.tick_seconds

    def close(self) -> None:
        self.service.read_models().close()
