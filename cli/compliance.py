"""``arrears contact check`` and ``arrears compliance audit``: the contact gate, by hand."""

from __future__ import annotations

import json
from datetime import datetime

import click

from cli.core import friendly_errors, main, open_service, parse_moment, store_option
from ledger.compliance import AuditReport
from ledger.contact_gate import GATE_CHANNELS, ContactDecision
from ledger.domain.account import PARTIES


@main.group()
def contact() -> None:
    """Ask the contact gate before contacting a debtor."""


@contact.command("check")
@click.argument("account")
@click.option(
    "--channel", required=True, type=click.Choice(sorted(GATE_CHANNELS)), help="How to contact."
)
@click.option(
    "--at",
    "at",
    default=None,
    metavar="TIMESTAMP",
    help="When: RFC 3339 with Z or an offset, or a date (its start, UTC); default now.",
)
@click.option("--purpose", default="collection", show_default=True, help="Why.")
@click.option("--party", default="debtor", show_default=True, type=click.Choice(sorted(PARTIES)))
@click.option("--to", default=None, metavar="LABEL", help='Contact point, e.g. "phone:0".')
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@store_option
@friendly_errors
def check(
    account: str,
    channel: str,
    at: str | None,
    purpose: str,
    party: str,
    to: str | None,
    as_json: bool,
    store: str | None,
) -> None:
    """Show every rule's verdict on contacting ACCOUNT (id, reference or CREDITOR/REFERENCE).

    Exit status 0 when the contact is allowed, 1 when a rule blocks it."""
    moment = _moment(at) if at is not None else None
    service = open_service(store)
    account_id = service.resolve_account(account)
    decision = service.check_contact(
        account_id, channel, at=moment, purpose=purpose, party=party, to=to
    )
    if as_json:
        click.echo(json.dumps({"account_id": str(account_id), **decision.as_dict()}, indent=2))
    else:
        _print_decision(decision)
    raise SystemExit(0 if decision.allowed else 1)


def _moment(text: str) -> datetime:
    """Unlike report dates, a bare date here means the start of that day."""
    return parse_moment(text, day_start=True)


def _print_decision(decision: ContactDecision) -> None:
    verdict = "ALLOWED" if decision.allowed else "BLOCKED"
    click.echo(
        f"{verdict}: {decision.channel} for {decision.purpose} at {decision.at:%Y-%m-%dT%H:%M:%SZ}"
    )
    if not decision.verdicts:
        click.echo("  (no rule applies)")
    for v in decision.verdicts:
        click.echo(f"  {v.outcome:<5}  {v.rule} v{v.version}: {v.reason}")
        click.echo(f"         {v.citation}")


@main.group()
def compliance() -> None:
    """Compliance evidence from the ledger."""


@compliance.command("audit")
@click.option("--pack", default=None, metavar="P", help="Only this rule pack's verdicts.")
@click.option(
    "--from",
    "since",
    default=None,
    metavar="DATE",
    help="Only contacts on or after DATE (UTC) or an RFC 3339 timestamp.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
)
@store_option
@friendly_errors
def audit(pack: str | None, since: str | None, fmt: str, store: str | None) -> None:
    """Replay recorded contacts through the rules in force now; list those that break them.

    Exit status 0 when no contact breaks a rule, 1 otherwise."""
    first = None if since is None else _moment(since)
    service = open_service(store)
    report = service.compliance_audit(since=first, pack=pack)
    if fmt == "json":
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        _print_audit(report)
    raise SystemExit(1 if report.findings else 0)


def _print_audit(report: AuditReport) -> None:
    scope = f"pack {report.pack}" if report.pack else "all rule packs"
    click.echo(
        f"compliance audit ({scope}): {report.contacts_checked} outbound contacts on "
        f"{report.accounts} accounts checked, {len(report.findings)} violations"
    )
    if not report.findings:
        return
    click.echo(
        f"{'occurred_at':<20} {'reference':<14} {'channel':<7} {'rule':<34} {'ver':<4} new  reason"
    )
    for f in report.findings:
        click.echo(
            f"{f.occurred_at:%Y-%m-%dT%H:%M:%SZ} {f.reference:<14} {f.channel:<7} "
            f"{f.verdict.rule:<34} {f.verdict.version:<4} {'no ' if f.flagged_then else 'yes'}  "
            f"{f.verdict.reason}"
        )
