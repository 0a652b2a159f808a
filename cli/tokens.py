"""``arrears tokens create|list|revoke``: bearer tokens for the HTTP API."""

from __future__ import annotations

import json
import sys

import click

from cli.core import friendly_errors, main, open_service, store_option
from ledger.access import ROLES, TokenStore


def _token_store(store: str | None) -> TokenStore:
    tokens = open_service(store).tokens()
    click.get_current_context().call_on_close(tokens.close)
    return tokens


def _scope(row: dict[str, str | None]) -> str:
    names = [f"{field}={row[field]}" for field in ("agency", "firm", "creditor") if row[field]]
    return " ".join(names) or "-"


@main.group()
def tokens() -> None:
    """Bearer tokens for the HTTP API (Authorization: Bearer <token>)."""


@tokens.command("create")
@click.option("--role", required=True, type=click.Choice(ROLES), help="What the token may do.")
@click.option("--agency", default=None, metavar="NAME", help="Agency (required for --role agency).")
@click.option(
    "--firm", default=None, metavar="NAME", help="Law firm (required for --role lawfirm)."
)
@click.option("--creditor", default=None, metavar="NAME", help="Limit a collector to one creditor.")
@click.option("--label", default=None, metavar="TEXT", help="A note: who or what uses it.")
@click.option("--json", "as_json", is_flag=True, help="Print the token and its details as JSON.")
@store_option
@friendly_errors
def create(
    role: str,
    agency: str | None,
    firm: str | None,
    creditor: str | None,
    label: str | None,
    as_json: bool,
    store: str | None,
) -> None:
    """Create a token and print it, once: only a hash of it is stored."""
    principal, token = _token_store(store).create(
        role, agency=agency, firm=firm, creditor=creditor, label=label
    )
    if as_json:
        details = {
            "token": token,
            "token_id": principal.token_id,
            "role": principal.role,
            "agency": principal.agency,
            "firm": principal.firm,
            "creditor": principal.creditor,
            "label": label,
        }
        click.echo(json.dumps(details, indent=2))
    else:
        click.echo(token)  # alone on stdout, so that scripts can capture it
    click.echo(
        f"token {principal.token_id} ({role}) created: it is shown only this once and cannot "
        f"be recovered, so store it now; revoke it with 'arrears tokens revoke "
        f"{principal.token_id}'",
        err=True,
    )


@tokens.command("list")
@click.option("--json", "as_json", is_flag=True)
@store_option
@friendly_errors
def list_tokens(as_json: bool, store: str | None) -> None:
    """Every token (never its secret), with its role, scope and state."""
    rows = _token_store(store).list()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'token id':<16}  {'role':<9}  {'scope':<28}  {'created (UTC)':<19}  state  label")
    for row in rows:
        state = f"revoked {row['revoked_at'][:19]}" if row["revoked_at"] else "active"
        click.echo(
            f"{row['token_id']:<16}  {row['role']:<9}  {_scope(row):<28}  "
            f"{row['created_at'][:19]:<19}  {state}  {row['label'] or ''}"
        )


@tokens.command("revoke")
@click.argument("token_id")
@store_option
@friendly_errors
def revoke(token_id: str, store: str | None) -> None:
    """Revoke TOKEN_ID (as shown by 'arrears tokens list'): it stops working at once."""
    if not _token_store(store).revoke(token_id):
        click.echo(f"no active token {token_id}: unknown or already revoked", err=True)
        sys.exit(1)
    click.echo(f"token {token_id} revoked")
