"""Observers of committed events (ledger/observers.py, plugins/observers.py), on both backends.

The story: accounts are placed; the worker hands every committed event, in
order, to each observer; an observer that fails is retried with backoff, and
when it keeps failing the event is parked for it alone while everything else
moves on; an operator lists and retries what was parked.  Delivery is
at-least-once and resumes from each observer's stored position.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import structlog
from click.testing import CliRunner
from conftest import JANE, placement

import cli
import cli.observers
import cli.worker
from bootstrap import build_service
from ledger.application import Ledger, open_ledger
from ledger.clock import MovableClock
from ledger.observers import Observer, ObserverDispatcher, RetryPolicy
from ledger.services import LedgerService
from ledger.worker import Worker
from plugins import hookimpl
from plugins.manager import ArrearsPluginManager, build_plugin_manager
from plugins.observers import observers_from

FAST = RetryPolicy(attempts=3, base_delay=0.1, max_delay=1.0)


class Crash(BaseException):
    """Stands for the process dying in the middle of an observer's call."""


@dataclass
class Spy:
    """An observer that records what it gets, and fails when told to."""

    name: str
    failures: int = 0  # the first N calls raise
    fail_at: set[int] = field(default_factory=set)  # calls for these positions raise
    crash_at: int | None = None
    seen: list[tuple[int, str]] = field(default_factory=list)
    calls: Counter[int] = field(default_factory=Counter)
    during: Callable[[], None] | None = None  # run inside the first call

    @property
    def observer(self) -> Observer:
        return Observer(self.name, self.notify)

    @property
    def positions(self) -> list[int]:
        return [p for p, _ in self.seen]

    def notify(self, event: Any, position: int) -> None:
        self.calls[position] += 1
        if self.during is not None:
            during, self.during = self.during, None
            during()
        if position == self.crash_at:
            raise Crash
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("downstream unavailable")
        if position in self.fail_at:
            raise ConnectionError(f"cannot deliver {position} to jane.debtor@example.com")
        self.seen.append((position, type(event).__name__))


def logged(ledger: Ledger) -> list[tuple[int, str]]:
    """Every stored event's (position, type), read straight from the notification log."""
    notifications = ledger.recorder.select_notifications(start=1, limit=100_000)
    return [(n.id, type(ledger.mapper.to_domain_event(n)).__name__) for n in notifications]


def head(ledger: Ledger) -> int:
    return int(ledger.recorder.max_notification_id() or 0)


@pytest.fixture
def dispatchers(ledger: Ledger, clock: MovableClock) -> Iterator[Callable[..., ObserverDispatcher]]:
    """Makes dispatchers over the test's ledger (no real sleeping, no jitter); closes them."""
    made: list[ObserverDispatcher] = []

    def make(*spies: Spy, on: Ledger | None = None, **options: Any) -> ObserverDispatcher:
        options.setdefault("retry", FAST)
        options.setdefault("sleep", lambda seconds: None)
        dispatcher = ObserverDispatcher(
            on or ledger, [s.observer for s in spies], clock=clock, rand=lambda: 0.0, **options
        )
        made.append(dispatcher)
        return dispatcher

    yield make
    for dispatcher in made:
        dispatcher.close()


def place(service: LedgerService, *references: str) -> None:
    for reference in references:
        service.place_account(placement(reference), debtor=JANE)


# ------------------------------------------------------------------ delivery


def test_observers_see_every_event_once_in_ledger_order(
    service: LedgerService, ledger: Ledger, dispatchers: Callable[..., ObserverDispatcher]
) -> None:
    """Two observers each get every committed event once, in order, across small batches."""
    place(service, "ACC-1", "ACC-2", "ACC-3")
    audit, mailer = Spy("audit"), Spy("mailer")
    report = dispatchers(audit, mailer, batch_size=2).dispatch()
    assert audit.seen == mailer.seen == logged(ledger)
    assert report.delivered == {"audit": head(ledger), "mailer": head(ledger)}
    assert not report.retries and not report.parked
    again = dispatchers(audit, mailer).dispatch()
    assert not again.anything and audit.seen == logged(ledger)


def test_failing_call_is_retried_with_exponential_backoff_then_delivered(
    service: LedgerService, ledger: Ledger, dispatchers: Callable[..., ObserverDispatcher]
) -> None:
    """An observer that raises twice gets the event on the third call, after 0.1 s and 0.2 s."""
    place(service, "ACC-1")
    flaky = Spy("flaky", failures=2)
    sleeps: list[float] = []
    report = dispatchers(flaky, sleep=sleeps.append).dispatch()
    assert flaky.seen == logged(ledger)
    assert flaky.calls[flaky.positions[0]] == 3
    assert report.retries == {"flaky": 2} and not report.parked
    assert sleeps == [0.1, 0.2]


def test_backoff_doubles_up_to_the_cap_less_jitter() -> None:
    """Retry n waits base * 2^(n-1), capped, less up to ``jitter`` of it at random."""
    policy = RetryPolicy(attempts=6, base_delay=0.5, max_delay=3.0, jitter=0.5)
    assert [policy.delay(n, 0.0) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert policy.delay(2, 0.999) == pytest.approx(0.5, abs=0.001)
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)


def test_a_failing_event_is_parked_and_nothing_else_waits(
    service: LedgerService, ledger: Ledger, dispatchers: Callable[..., ObserverDispatcher]
) -> None:
    """The event one observer cannot take is parked for it alone; the rest keeps flowing."""
    place(service, "ACC-1")
    poisoned = logged(ledger)[1][0]
    picky, steady = Spy("picky", fail_at={poisoned}), Spy("steady")
    dispatcher = dispatchers(picky, steady)
    report = dispatcher.dispatch()
    assert steady.seen == logged(ledger)
    assert picky.seen == [e for e in logged(ledger) if e[0] != poisoned]
    assert picky.calls[poisoned] == FAST.attempts
    assert report.parked == {"picky": 1} and report.retries == {"picky": 2}

    (parked,) = dispatcher.parked()
    assert (parked.name, parked.position, parked.attempts) == ("picky", poisoned, 3)
    assert parked.event_type == dict(logged(ledger))[poisoned]
    assert parked.last_error.startswith("ConnectionError: cannot deliver")
    assert "jane.debtor@example.com" not in parked.last_error  # scrubbed of personal data
    status = {s.name: s for s in dispatcher.status()}
    assert status["picky"].position == status["steady"].position == head(ledger)
    assert (status["picky"].parked, status["steady"].parked, status["picky"].lag) == (1, 0, 0)

    place(service, "ACC-2")  # later events reach both, the picky one included
    dispatcher.dispatch()
    assert steady.seen == logged(ledger)
    assert picky.seen == [e for e in logged(ledger) if e[0] != poisoned]


def test_an_observer_that_always_fails_parks_everything_and_holds_back_no_one(
    service: LedgerService, ledger: Ledger, dispatchers: Callable[..., ObserverDispatcher]
) -> None:
    """Every event is parked for a broken observer; the healthy one gets them all."""
    place(service, "ACC-1")
    broken = Spy("broken", fail_at={p for p, _ in logged(ledger)})
    healthy = Spy("healthy")
    dispatcher = dispatchers(broken, healthy)
    report = dispatcher.dispatch()
    assert healthy.seen == logged(ledger) and broken.seen == []
    assert report.parked == {"broken": head(ledger)}
    assert [p.position for p in dispatcher.parked("broken")] == [p for p, _ in logged(ledger)]


def test_ledger_writes_are_never_blocked_or_rolled_back_by_observers(
    store_url: str, clock: MovableClock
) -> None:
    """Commands succeed with a failing plugin loaded; an observer may even write mid-call."""

    class Failing:
        @hookimpl
        def arrears_event_committed(self, event: Any) -> None:
            raise RuntimeError("observer down")

    pm = build_plugin_manager(builtins=False, entry_points=False, extra=[("failing", Failing())])
    service = build_service(store_url, clock=clock, plugins=pm)
    try:
        place(service, "ACC-1")  # observers are not on the write path at all
        before = logged(service.ledger)
        writer = Spy("writer", during=lambda: place(service, "ACC-2"))
        dispatcher = ObserverDispatcher(
            service.ledger,
            [*observers_from(pm), writer.observer],
            clock=clock,
            retry=FAST,
            sleep=lambda s: None,
        )
        try:
            report = dispatcher.dispatch()
        finally:
            dispatcher.close()
        after = logged(service.ledger)
        assert after[: len(before)] == before and len(after) > len(before)  # nothing rolled back
        assert writer.seen == after  # the events written during the call were delivered too
        assert report.parked["failing"] == len(after)
        assert service.get_account(service.resolve_account("ACC-2")).reference == "ACC-2"
    finally:
        service.ledger.close()


# ------------------------------------------------------------------ parking


def test_parked_delivery_is_retried_and_resolved_once_the_fault_is_fixed(
    service: LedgerService, ledger: Ledger, dispatchers: Callable[..., ObserverDispatcher]
) -> None:
    """Retry while still broken keeps it parked (attempts add up); fixed, it is resolved."""
    place(service, "ACC-1")
    first = logged(ledger)[0][0]
    webhook = Spy("webhook", fail_at={first})
    dispatcher = dispatchers(webhook)
    dispatcher.dispatch()

    still = dispatcher.retry_parked("webhook")
    assert [p.position for p in still.failed] == [first] and not still.resolved
    (parked,) = dispatcher.parked()
    assert parked.attempts == 2 * FAST.attempts and parked.resolved_at is None

    webhook.fail_at.clear()  # the fault is fixed
    fixed = dispatcher.retry_parked(position=first)
    assert [p.position for p in fixed.resolved] == [first] and not fixed.failed
    assert webhook.positions[-1] == first  # late, after the events that followed it
    assert dispatcher.parked() == []
    (resolved,) = dispatcher.parked(include_resolved=True)
    assert resolved.resolved_at is not None and resolved.attempts == 2 * FAST.attempts + 1
    assert {s.name: s.parked for s in dispatcher.status()} == {"webhook": 0}


def test_parked_deliveries_of_an_observer_not_loaded_are_skipped(
    service: LedgerService, dispatchers: Callable[..., ObserverDispatcher]
) -> None:
    """A retry without the parked observer loaded leaves its deliveries parked."""
    place(service, "ACC-1")
    dispatchers(Spy("gone", failures=100)).dispatch()
    other = dispatchers(Spy("other"))
    report = other.retry_parked()
    assert report.skipped and not report.resolved and not report.failed
    status = {s.name: s for s in other.status()}
    assert not status["gone"].loaded and status["gone"].parked == len(report.skipped)


# ------------------------------------------------------- restarts and crashes


def test_a_restarted_dispatcher_resumes_from_the_stored_position(
    service: LedgerService, store_url: str, dispatchers: Callable[..., ObserverDispatcher]
) -> None:
    """A second dispatcher (a new process) delivers nothing twice, and then only new events."""
    place(service, "ACC-1")
    dispatchers(Spy("audit")).dispatch()
    done = head(service.ledger)

    reopened = open_ledger(store_url)
    try:
        again = Spy("audit")
        restarted = dispatchers(again, on=reopened)
        assert not restarted.dispatch().anything and again.seen == []
        place(service, "ACC-2")
        restarted.dispatch()
        assert again.seen == [e for e in logged(reopened) if e[0] > done] != []
    finally:
        reopened.close()


def test_a_crash_mid_call_delivers_that_event_again(
    service: LedgerService, ledger: Ledger, dispatchers: Callable[..., ObserverDispatcher]
) -> None:
    """At-least-once: the position moves only after the call returned."""
    place(service, "ACC-1")
    second = logged(ledger)[1][0]
    crashing = Spy("audit", crash_at=second)
    with pytest.raises(Crash):
        dispatchers(crashing).dispatch()
    assert crashing.positions == [logged(ledger)[0][0]]
    resumed = Spy("audit")
    dispatchers(resumed).dispatch()
    assert resumed.seen == logged(ledger)[1:]


def test_one_dispatcher_at_a_time_serves_an_observer(
    service: LedgerService, ledger: Ledger, dispatchers: Callable[..., ObserverDispatcher]
) -> None:
    """While one worker delivers to an observer, another finds it busy and leaves it alone."""
    place(service, "ACC-1")
    rival_reports = []
    rival = dispatchers(Spy("audit"))
    audit = Spy("audit", during=lambda: rival_reports.append(rival.dispatch()))
    dispatchers(audit).dispatch()
    (busy,) = rival_reports
    assert busy.busy == ["audit"] and not busy.anything
    assert audit.seen == logged(ledger)


def test_failures_are_logged_without_personal_data(
    service: LedgerService, ledger: Ledger, dispatchers: Callable[..., ObserverDispatcher]
) -> None:
    """Log lines name the observer, position, event type and error class; no e-mail address."""
    place(service, "ACC-1")
    first = logged(ledger)[0][0]
    with structlog.testing.capture_logs() as logs:
        dispatchers(Spy("mailer", fail_at={first})).dispatch()
    failed = [e for e in logs if e["event"] == "observer_call_failed"]
    (parked,) = [e for e in logs if e["event"] == "observer_delivery_parked"]
    assert len(failed) == FAST.attempts - 1
    assert (parked["observer"], parked["position"], parked["error"]) == (
        "mailer",
        first,
        "ConnectionError",
    )
    assert parked["event_type"] == logged(ledger)[0][1]
    assert "example.com" not in repr(logs)


# ------------------------------------------------------------------- plugins


def test_plugins_observe_through_observers_from_each_on_its_own(
    service: LedgerService, ledger: Ledger, clock: MovableClock
) -> None:
    """Each hook implementation is an observer named after its plugin, taking the arguments
    it asks for; a plugin that raises is parked alone."""
    got: dict[str, list[Any]] = {"ids": [], "positions": []}

    class EventIds:
        @hookimpl
        def arrears_event_committed(self, event: Any) -> None:
            got["ids"].append((event.originator_id, event.originator_version))

    class Positions:
        @hookimpl
        def arrears_event_committed(self, position: int, event: Any) -> None:
            got["positions"].append((position, type(event).__name__))

    class Broken:
        @hookimpl
        def arrears_event_committed(self) -> None:
            raise ValueError("nope")

    pm = build_plugin_manager(
        builtins=False,
        entry_points=False,
        extra=[("ids", EventIds()), ("positions", Positions()), ("broken", Broken())],
    )
    observers = observers_from(pm)
    assert [o.name for o in observers] == ["broken", "ids", "positions"]
    place(service, "ACC-1")
    dispatcher = ObserverDispatcher(
        ledger, observers, clock=clock, retry=FAST, sleep=lambda s: None
    )
    try:
        report = dispatcher.dispatch()
    finally:
        dispatcher.close()
    assert got["positions"] == logged(ledger)
    assert len(got["ids"]) == len(set(got["ids"])) == head(ledger)
    assert report.parked == {"broken": head(ledger)}


# ------------------------------------------------------------------- worker


def test_the_worker_serves_observers_after_the_read_models(
    service: LedgerService, ledger: Ledger
) -> None:
    """``Worker.run_once`` delivers every event, those its own tick recorded included."""
    place(service, "ACC-1")
    audit = Spy("audit")
    worker = Worker(service, observers=[audit.observer], retry=FAST)
    try:
        worker.run_once()
        assert worker.dispatcher is not None
        assert audit.seen == logged(ledger)
        assert worker.last_dispatch is not None
        assert worker.last_dispatch.delivered == {"audit": head(ledger)}
        assert Worker(service).dispatcher is None  # no observers, no dispatcher
    finally:
        worker.close()


# ---------------------------------------------------------------------- CLI


@pytest.fixture
def plugged(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The CLI's plugin manager gets an ``audit`` observer and a ``flaky`` one that fails
    on the positions listed in ``state["fail_at"]``; signal handlers are restored after."""
    state: dict[str, Any] = {"seen": [], "fail_at": set()}

    class Audit:
        @hookimpl
        def arrears_event_committed(self, position: int) -> None:
            state["seen"].append(position)

    class Flaky:
        @hookimpl
        def arrears_event_committed(self, position: int) -> None:
            if position in state["fail_at"]:
                raise TimeoutError("gateway timed out")

    def manager() -> ArrearsPluginManager:
        return build_plugin_manager(
            builtins=False, entry_points=False, extra=[("audit", Audit()), ("flaky", Flaky())]
        )

    monkeypatch.setattr(cli.worker, "build_plugin_manager", manager)
    monkeypatch.setattr(cli.observers, "build_plugin_manager", manager)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    yield state
    for signum, handler in handlers.items():
        signal.signal(signum, handler)


def test_cli_worker_once_delivers_and_observers_commands_report_and_retry(
    store_url: str, clock: MovableClock, plugged: dict[str, Any]
) -> None:
    """`worker --once` delivers; `observers status|parked|retry` show and fix a parked one."""
    ledger = open_ledger(store_url)
    try:
        place(LedgerService(ledger, clock), "ACC-1")
        positions = [p for p, _ in logged(ledger)]
    finally:
        ledger.close()
    plugged["fail_at"] = {positions[0]}
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(cli.main, [*args, "--store", store_url], catch_exceptions=False)

    worker = run("worker", "--once")
    assert worker.exit_code == 0, worker.output
    assert "observers:" in worker.stderr and "parked (flaky 1)" in worker.stderr
    assert plugged["seen"][: len(positions)] == positions

    status = run("observers", "status", "--json")
    assert status.exit_code == 0, status.output
    rows = {r["name"]: r for r in json.loads(status.stdout)}
    assert set(rows) == {"audit", "flaky"}
    assert rows["audit"]["lag"] == 0 and rows["audit"]["parked"] == 0
    assert rows["flaky"]["parked"] == 1 and rows["flaky"]["position"] == rows["flaky"]["head"]
    text = run("observers", "status")
    assert "flaky" in text.stdout and "parked" in text.stdout

    parked = run("observers", "parked", "--json")
    (row,) = json.loads(parked.stdout)
    assert (row["name"], row["position"], row["attempts"]) == ("flaky", positions[0], 4)
    assert row["last_error"] == "TimeoutError: gateway timed out"
    assert "flaky @ " in run("observers", "parked").stdout

    unknown = run("observers", "retry", "--observer", "nope")
    assert unknown.exit_code == 2 and "no observer 'nope' is loaded" in unknown.stderr

    plugged["fail_at"] = set()  # the gateway is back
    retried = run("observers", "retry", "--observer", "flaky", "--position", str(positions[0]))
    assert retried.exit_code == 0, retried.output
    assert "1 resolved, 0 still failing" in retried.stdout
    assert run("observers", "parked").stdout == "nothing parked\n"
    assert len(json.loads(run("observers", "parked", "--all", "--json").stdout)) == 1


# --------------------------------------------------------------------- docs


def test_docs_observer_example_runs() -> None:
    """The observer example in docs/plugins.md runs and its assertions hold."""
    root = Path(__file__).resolve().parent.parent
    doc = (root / "docs" / "plugins.md").read_text()
    match = re.search(r"<!-- example: observers -->\n```python\n(.*?)```", doc, flags=re.S)
    assert match
    result = subprocess.run(
        [sys.executable, "-"], input=match.group(1), text=True, capture_output=True, cwd=root
    )
    assert result.returncode == 0, result.stderr
    assert "observer example works:" in result.stdout
