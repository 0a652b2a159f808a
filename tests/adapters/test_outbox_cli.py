"""``arrears outbox list|show|retry|run`` and ``arrears worker --once --config``: an operator
finds a dead text, fixes the gateway, and puts it back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import UUID

from click.testing import CliRunner, Result
from outbox_helpers import Gateway, Reply

import cli
from ledger.services import LedgerService


def write_config(tmp_path: Path, gateway: Gateway) -> Path:
    path = tmp_path / "arrears.toml"
    path.write_text(
        f"""
[adapters.outbox]
max_attempts = 1
backoff_base = 0.1

[adapters.sms]
profile = "generic"
url = "{gateway.url}"
sender = "+14155550100"
timeout = 2.0
recheck_gate = false  # the CLI runs on the real clock: the test must not depend on the hour
"""
    )
    return path


def test_an_operator_lists_shows_and_retries_a_dead_text(
    svc: LedgerService, account_id: UUID, gateway: Gateway, sqlite_url: str, tmp_path: Path
) -> None:
    """run: one sent, one dead; list/show find the dead one; retry --all-dead; the worker
    delivers it with the same key."""
    config = str(write_config(tmp_path, gateway))
    svc.request_message(account_id, channel="sms", template="reminder")
    svc.request_message(account_id, channel="sms", template="reminder")
    gateway.script = [Reply(503)]
    runner = CliRunner()

    def run(*args: str, config_file: bool = True) -> Result:
        extra = ["--config", config] if config_file else []
        return runner.invoke(cli.main, [*args, *extra, "--store", sqlite_url])

    result = run("outbox", "run")
    assert result.exit_code == 0, result.output
    assert "2 jobs created, 1 delivered, 0 to retry, 1 dead (sms 1)" in result.stdout

    listed = run("outbox", "list", "--state", "dead", "--json", config_file=False)
    [dead] = json.loads(listed.stdout)
    assert dead["state"] == "dead" and dead["last_error"] == (
        "DeliveryError: the SMS gateway answered HTTP 503 (code error)"
    )
    assert "+1415" not in listed.stdout and dead["payload"]["template"] == "reminder"
    shown = run("outbox", "show", dead["key"], config_file=False)
    assert shown.exit_code == 0 and "state:" in shown.stdout and dead["key"] in shown.stdout
    assert run("outbox", "show", "nope", config_file=False).exit_code == 2
    assert run("outbox", "retry", config_file=False).exit_code == 2  # KEY or --all-dead

    retried = run("outbox", "retry", "--all-dead", config_file=False)
    assert retried.exit_code == 0 and f"pending again: {dead['key']}" in retried.stdout
    worker = run("worker", "--once")
    assert worker.exit_code == 0, worker.output
    assert "outbox: 0 jobs created, 1 delivered" in worker.stderr
    delivered: list[dict[str, Any]] = json.loads(
        run("outbox", "list", "--state", "delivered", "--json", config_file=False).stdout
    )
    assert {d["key"] for d in delivered} >= {dead["key"]}
    assert gateway.keys[dead["key"]] == 2 and len(gateway.sent) == 2
    assert "2 deliveries" in run("outbox", "list", config_file=False).stdout


def test_retry_now_delivers_at_once_and_a_delivered_job_is_not_retried(
    svc: LedgerService, account_id: UUID, gateway: Gateway, sqlite_url: str, tmp_path: Path
) -> None:
    """`retry KEY --now` sends it here and then; retrying a delivered one is refused."""
    config = str(write_config(tmp_path, gateway))
    svc.request_message(account_id, channel="sms", template="reminder")
    gateway.script = [Reply(503)]
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(cli.main, [*args, "--config", config, "--store", sqlite_url])

    assert "1 dead" in run("outbox", "run").stdout
    [dead] = json.loads(run("outbox", "list", "--json").stdout)
    unconfigured = runner.invoke(
        cli.main, ["outbox", "retry", dead["key"], "--now", "--store", sqlite_url]
    )
    assert unconfigured.exit_code == 2 and "enables the 'sms' adapter" in unconfigured.stderr
    [still] = json.loads(run("outbox", "list", "--json").stdout)
    assert still["state"] == "dead"  # nothing was changed
    now = run("outbox", "retry", dead["key"], "--now")
    assert now.exit_code == 0, now.output
    assert "1 delivered" in now.stdout
    again = run("outbox", "retry", dead["key"])
    assert again.exit_code == 2 and "already delivered" in again.stderr
