"""The real `arrears worker` process, killed with SIGKILL in the middle of delivering
texts, then restarted: every message reaches the gateway, the gateway acts once per
idempotency key, and the ledger records each message as sent exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest
from outbox_helpers import AFTERNOON, JANE, Gateway, Reply, events_of

from bootstrap import build_service
from ledger.clock import MovableClock
from ledger.domain.account import Account
from plugins.manager import build_plugin_manager
from tests.conftest import placement

ARREARS = str(Path(sys.executable).with_name("arrears"))
MESSAGES = 12


@pytest.fixture
def slow_gateway() -> Iterator[Gateway]:
    gateway = Gateway()
    gateway.script = [Reply(delay=0.25) for _ in range(1000)]
    yield gateway
    gateway.stop()


def config_file(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "arrears.toml"
    path.write_text(
        "[adapters.outbox]\nmax_attempts = 20\nbackoff_base = 0.2\nbackoff_cap = 0.5\n"
        "jitter = 0.0\nlease_seconds = 1.0\n\n"
        f'[adapters.sms]\nurl = "{url}"\nsender = "+14155550100"\ntimeout = 5.0\n'
        # The worker runs on the wall clock; the gate already allowed each text when
        # it was queued (at the test's afternoon), and that is what this test is about.
        "recheck_gate = false\n"
    )
    return path


def worker(store: str, config: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "ARREARS_LOG_LEVEL": "WARNING", "ARREARS_DISABLE_PLUGINS": "holidays"}
    return subprocess.Popen(
        [ARREARS, "worker", "--store", store, "--config", str(config), "--tick", "0.2", *extra],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_worker_killed_mid_delivery_loses_nothing_and_sends_once_per_key(
    tmp_path: Path, slow_gateway: Gateway
) -> None:
    store = f"sqlite:///{tmp_path / 'outbox.db'}"
    clock = MovableClock(AFTERNOON)
    pm = build_plugin_manager(entry_points=False)
    svc = build_service(store, clock=clock, plugins=pm, config={})
    try:
        account_id = UUID(str(svc.place_account(placement(), debtor=JANE).id))
        queued = [
            svc.request_message(account_id, channel="sms", template="reminder").message_id
            for _ in range(MESSAGES)
        ]
    finally:
        svc.ledger.close()
    config = config_file(tmp_path, slow_gateway.url)

    first = worker(store, config)
    deadline = time.monotonic() + 30
    while len(slow_gateway.requests) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    assert 3 <= len(slow_gateway.requests) < MESSAGES, "killed too late to prove anything"

    time.sleep(1.2)  # the dead worker's leases run out
    second = worker(store, config)
    try:
        while len(slow_gateway.sent) < MESSAGES and time.monotonic() < deadline + 30:
            time.sleep(0.1)
        time.sleep(0.5)  # let it record the last outcome
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(20)

    assert len(slow_gateway.sent) == MESSAGES  # each key acted on once
    svc = build_service(store, clock=clock, plugins=pm, config={})
    try:
        sent = events_of(svc, account_id, Account.MessageSent)
        assert sorted(e.message_id for e in sent) == sorted(queued)  # once each
        assert {e.provider_id for e in sent} == set(slow_gateway.sent.values())
    finally:
        svc.ledger.close()
