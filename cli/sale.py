"""``arrears sale export``: the sale file for a debt buyer (see ``adapters.debt_sale``).

The buyer checks the file with ``python -m adapters.debt_sale.verify DIR``,
which needs nothing but the Python standard library.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path

import click

from adapters.debt_sale.export import SaleRequest, SaleResult, account_reference, export_sale
from adapters.debt_sale.verify import DEFAULT_KEY_ENV
from cli.core import friendly_errors, main, open_service, store_option
from ledger import errors


@main.group()
def sale() -> None:
    """Debt sale: export accounts, with verifiable histories, to a debt buyer."""


@sale.command("export")
@click.option("--buyer", required=True, metavar="B", help="The debt buyer.")
@click.option(
    "--accounts",
    "accounts_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help="One account id, reference or CREDITOR/REFERENCE per line; '#' starts a comment "
    "(at the start of a line or after a blank).",
)
@click.option(
    "--creditor",
    "creditors",
    multiple=True,
    metavar="C",
    help="Every open account of creditor C (repeatable).",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Directory for the sale file (new, empty, or this buyer's earlier export).",
)
@click.option(
    "--price-per-account", default=None, metavar="AMOUNT", help="Each account's price, e.g. 120.00."
)
@click.option(
    "--price",
    default=None,
    metavar="AMOUNT",
    help="The portfolio's price, split in proportion to the balances (exact to the cent).",
)
@click.option(
    "--complete",
    is_flag=True,
    help="Record the sale on each exported account (the buyer becomes the holder).",
)
@click.option("--seller", default=None, metavar="NAME", help="Seller named in the manifest.")
@click.option(
    "--sale-id", default=None, metavar="ID", help="Portfolio reference (default: from DIR)."
)
@click.option(
    "--limitation-margin",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    metavar="DAYS",
    help="Also refuse debts whose limitation period ends within DAYS.",
)
@click.option(
    "--signing-key-env",
    default=DEFAULT_KEY_ENV,
    show_default=True,
    metavar="NAME",
    help="Environment variable holding the manifest's HMAC-SHA256 key.",
)
@store_option
@friendly_errors
def export(
    buyer: str,
    accounts_file: Path | None,
    creditors: tuple[str, ...],
    out: Path,
    price_per_account: str | None,
    price: str | None,
    complete: bool,
    seller: str | None,
    sale_id: str | None,
    limitation_margin: int,
    signing_key_env: str,
    store: str | None,
) -> None:
    """Write DIR/accounts.csv, DIR/accounts/<id>.json history bundles, DIR/refused.csv
    and a signed DIR/manifest.json.  Refused accounts are listed with their reasons;
    exit 1 if no account can be sold."""
    if accounts_file is None and not creditors:
        raise errors.ValidationError("one of --accounts FILE or --creditor C is required")
    if accounts_file is not None and creditors:
        raise errors.ValidationError("give either --accounts FILE or --creditor C, not both")
    references: list[str] = []
    if accounts_file is not None:
        try:
            lines = accounts_file.read_text(encoding="utf-8-sig").splitlines()
        except UnicodeDecodeError as e:
            raise errors.ValidationError(
                f"{accounts_file} is not UTF-8 text (byte {e.start})", field="accounts"
            ) from None
        references = [ref for ref in map(account_reference, lines) if ref]
        if not references:
            raise errors.ValidationError(f"{accounts_file} lists no accounts")
    key = os.environ.get(signing_key_env)
    request = SaleRequest(
        buyer=buyer,
        out=out,
        references=references,
        creditors=creditors,
        price=price,
        price_per_account=price_per_account,
        complete=complete,
        seller=seller,
        sale_id=sale_id,
        signing_key=key.encode("utf-8") if key else None,
        limitation_margin=timedelta(days=limitation_margin),
    )
    result = export_sale(open_service(store), request)
    print_result(result, signing_key_env)
    sys.exit(0 if result.exported else 1)


def print_result(result: SaleResult, signing_key_env: str) -> None:
    for r in result.refused:
        account = f" ({r.account_id})" if r.account_id else ""
        click.echo(f"refused {r.reference}{account}: {r.reasons_text()}")
    out = result.out
    if not result.exported:
        click.echo(
            f"sale {result.sale_id}: nothing can be sold ({len(result.refused)} refused, "
            f"see {out / 'refused.csv'})",
            err=True,
        )
        return
    click.echo(
        f"sale {result.sale_id}: {len(result.exported)} accounts exported to {out}, "
        f"{len(result.refused)} refused"
    )
    if result.newly_sold or result.already_sold:
        click.echo(
            f"sold: {result.newly_sold} accounts now, {result.already_sold} already sold "
            "in this sale"
        )
    click.echo(f"seal: {result.seal_digest}")
    click.echo(f"manifest digest: {result.manifest_digest}")
    if result.signed:
        click.echo(f"manifest signed (HMAC-SHA256, key from {signing_key_env})")
    else:
        click.echo(f"manifest NOT signed: {signing_key_env} is not set")
