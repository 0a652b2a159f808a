"""``arrears projections status|rebuild``: the read models' positions, lag and rebuilds."""

from __future__ import annotations

import json
import sys

import click

from cli.core import friendly_errors, main, open_service, store_option


@main.group()
def projections() -> None:
    """Read models derived from the ledger: status and rebuilds."""


@projections.command("status")
@click.option("--json", "as_json", is_flag=True)
@store_option
@friendly_errors
def status(as_json: bool, store: str | None) -> None:
    """Each read model's position, lag behind the ledger and recent rate."""
    service = open_service(store)
    rows = service.read_models().engine.status()
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in rows], indent=2))
        return
    click.echo(
        f"{'read model':<20} {'gen':>4} {'position':>10} {'head':>10} {'lag':>8} "
        f"{'rate ev/s':>10}  updated"
    )
    for r in rows:
        rate = f"{r.rate:,.0f}" if r.rate else "-"  # speed of the last batch applied
        extra = f"  (rebuilding: at {r.building})" if r.building is not None else ""
        if r.stale:
            extra += "  (built by older code: rebuilt on the next catch-up)"
        click.echo(
            f"{r.name:<20} {r.generation:>4} {r.position:>10} {r.head:>10} {r.lag:>8} {rate:>10}  "
            f"{r.updated_at or 'never'}{extra}"
        )


@projections.command("rebuild")
@click.argument("name")
@store_option
@friendly_errors
def rebuild(name: str, store: str | None) -> None:
    """Rebuild NAME from the first event into fresh tables, then switch.

    The old tables keep serving readers until the new ones have caught up.
    """
    from tqdm import tqdm

    service = open_service(store)
    engine = service.read_models().engine
    head = engine.head()
    with tqdm(total=head, desc=f"rebuild {name}", unit="ev", file=sys.stderr) as bar:
        total = engine.rebuild(name, progress=bar.update)
    (state,) = [s for s in engine.status() if s.name == name]
    click.echo(
        f"rebuilt {name}: {total} events, generation {state.generation}, position {state.position}"
    )
