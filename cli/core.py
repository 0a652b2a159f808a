"""The ``arrears`` command line: thin, it parses, calls the service layer, and prints."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from functools import wraps
from typing import Any, TypeVar
from uuid import UUID

import click
from eventsourcing.domain import OriginatorVersionError
from eventsourcing.persistence import MapperDeserialisationError, PersistenceError
from eventsourcing.utils import TopicError

from bootstrap import build_service
from ledger import errors
from ledger.domain.ids import account_id as derive_account_id
from ledger.history import History
from ledger.logs import check_log_level, configure_logging
from ledger.services import LedgerService
from ledger.tamper.verify import VerifyReport

F = TypeVar("F", bound=Callable[..., Any])

store_option = click.option(
    "--store",
    "store",
    envvar="ARREARS_STORE",
    default=None,
    metavar="URL",
    help="sqlite:///path/arrears.db (default ./arrears.db) or postgresql://user@host:port/db",
)


def friendly_errors(func: F) -> F:
    """Domain and store errors become one line on stderr and exit code 2, never a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except errors.LedgerError as e:
            click.echo(f"error [{e.code}]: {e.message}", err=True)
            sys.exit(2)
        except (
            OriginatorVersionError,
            TopicError,
            MapperDeserialisationError,
            PersistenceError,
        ) as e:
            # Not a domain error, but still one line: a stream that no longer replays
            # (rows removed or altered behind the ledger's back) or a failing store.
            first = str(e).strip().splitlines()[0].rstrip(":") if str(e).strip() else ""
            cause = f"{type(e).__name__}{': ' + first if first else ''}"
            if isinstance(e, PersistenceError):
                message = f"the store failed the operation ({cause})"
            else:
                message = f"stored events cannot be replayed ({cause}); run 'arrears verify'"
            click.echo(f"error [{errors.StoreError.code}]: {message}", err=True)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


def open_service(store: str | None) -> LedgerService:
    """The service for one command; its store is closed when the command ends, however."""
    service = build_service(store)
    click.get_current_context().call_on_close(service.ledger.close)
    return service


_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_MOMENT_EXAMPLE = "use e.g. 2026-03-02T14:00:00Z, 2026-03-02T09:00:00-05:00 or 2026-03-02"


def parse_moment(text: str, *, day_start: bool = False) -> datetime:
    """RFC 3339 with ``Z`` or an offset, or a bare date (``YYYY-MM-DD``, UTC): the end of
    that day, or its start with ``day_start``.  A time without an offset is refused
    rather than guessed; anything unreadable is :class:`errors.InvalidDate`."""
    text = text.strip()
    if _DAY.fullmatch(text):
        try:
            day = date.fromisoformat(text)
        except ValueError as e:
            raise errors.InvalidDate(f"{text!r} is not a date ({e}); {_MOMENT_EXAMPLE}") from None
        return datetime.combine(day, time.min if day_start else time.max, tzinfo=UTC)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if moment.tzinfo is None and not any(c in text for c in "Tt "):
            raise ValueError(text)  # a compact or week date: not one of the forms taken
    except ValueError:
        raise errors.InvalidDate(f"{text!r} is not a timestamp; {_MOMENT_EXAMPLE}") from None
    if moment.tzinfo is None:
        raise errors.InvalidDate(
            f"{text!r} has no UTC offset: RFC 3339 needs Z or an offset such as -05:00 "
            "(e.g. 2026-03-02T14:00:00Z), or give a bare date"
        )
    return moment


class ArrearsGroup(click.Group):
    """The top-level group: Arrears' own commands, then those plugins contribute.

    Plugin commands are looked up only for a name Arrears does not have (or for
    ``--help``), so a broken plugin never stands in the way of a core command.
    """

    def _plugin_commands(self, ctx: click.Context, *, strict: bool) -> dict[str, click.Command]:
        from cli.plugins import contributed_commands

        try:
            commands = contributed_commands()
        except errors.LedgerError as e:
            click.echo(f"{'error' if strict else 'warning'} [{e.code}]: {e.message}", err=True)
            if strict:
                ctx.exit(2)
            return {}
        return {n: c for n, c in commands.items() if n not in self.commands}

    def list_commands(self, ctx: click.Context) -> list[str]:
        plugin_commands = self._plugin_commands(ctx, strict=False)
        return sorted([*super().list_commands(ctx), *plugin_commands])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None:
            command = self._plugin_commands(ctx, strict=True).get(cmd_name)
        if command is not None:
            _offer_config_option(command)
        return command


def _use_config(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        # One process per command: the file named here is the one every part reads.
        os.environ["ARREARS_CONFIG"] = value


#: ``--config FILE`` on every command (the rule packs, their parameters and the
#: adapters are all read from it), for the commands that do not declare their own.
_CONFIG_OPTION = click.Option(
    ["--config", "_config_file"],
    metavar="FILE",
    type=click.Path(exists=True, dir_okay=False),
    expose_value=False,
    is_eager=True,
    callback=_use_config,
    help="The TOML config file (or ARREARS_CONFIG): rule packs, their parameters, adapters.",
)


def _offer_config_option(command: click.Command) -> None:
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _offer_config_option(sub)
        return
    if not any("--config" in getattr(p, "opts", ()) for p in command.params):
        command.params.append(_CONFIG_OPTION)


@click.group(cls=ArrearsGroup)
@click.version_option(package_name="arrears")
def main() -> None:
    """Arrears: an event-sourced, tamper-evident ledger for debt collection."""
    level = os.environ.get("ARREARS_LOG_LEVEL")
    if level is not None:
        # Checked before any command runs: every command configures logging from it.
        try:
            check_log_level(level)
        except errors.LedgerError as e:
            click.echo(f"error [{e.code}]: ARREARS_LOG_LEVEL: {e.message}", err=True)
            sys.exit(2)


@main.command()
@click.option("--accounts", default=300, show_default=True, help="How many accounts to place.")
@click.option("--seed", default=7, show_default=True, help="Same seed, same portfolio.")
@store_option
@friendly_errors
def demo(accounts: int, seed: int, store: str | None) -> None:
    """Build a realistic, deterministic demo portfolio through the service layer."""
    from tqdm import tqdm

    from ledger.demo import build_demo

    service = open_service(store)
    if "ARREARS_LOG_LEVEL" not in os.environ:
        # Thousands of steps, a few of them planted rule violations: keep the progress
        # bar readable; `arrears compliance audit` lists the violations afterwards.
        configure_logging(level="ERROR", force=True)
    result = build_demo(
        service,
        accounts=accounts,
        seed=seed,
        progress=lambda steps: tqdm(steps, desc="demo", unit="step", file=sys.stderr),
    )
    click.echo(
        f"demo: {result.accounts_created} accounts placed, {result.accounts_skipped} already "
        f"present, {result.steps} steps recorded, {result.refused} refused by the ledger's rules"
    )


@main.command()
@store_option
@friendly_errors
def seal(store: str | None) -> None:
    """Record a seal over the whole ledger and print the digest to keep outside."""
    result = open_service(store).seal()
    state = "sealed" if result.new else "already sealed (no events since the last seal)"
    click.echo(f"{state}: {result.event_count} events up to position {result.position}")
    click.echo(f"digest: {result.digest}")


@main.command()
@click.option("--account", "account", default=None, help="Check one account (id or reference).")
@click.option("--digest", default=None, help="A digest printed by 'arrears seal', kept outside.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable report.")
@store_option
@friendly_errors
def verify(account: str | None, digest: str | None, as_json: bool, store: str | None) -> None:
    """Check every hash chain and seal; exit 0 if intact, 1 if anything was altered."""
    service = open_service(store)
    account_id = verify_target(service, account) if account else None
    report = service.verify(account_id=account_id, digest=digest)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        print_verify(report)
    sys.exit(0 if report.ok else 1)


def verify_target(service: LedgerService, ref: str) -> UUID:
    """The account to verify, without replaying it: a tampered stream may not replay at
    all, and a deleted one must still be nameable (by id or CREDITOR/REFERENCE)."""
    try:
        return UUID(ref)
    except ValueError:
        pass
    if "/" in ref:
        creditor, _, reference = ref.partition("/")
        return derive_account_id(creditor, reference)
    return service.resolve_account(ref)


def print_verify(report: VerifyReport) -> None:
    for problem in report.problems:
        click.echo(problem.describe())
    status = "INTACT" if report.ok else f"TAMPERED ({len(report.problems)} problems)"
    click.echo(
        f"verify: {status}: {report.events_checked} events in {report.streams_checked} streams, "
        f"{report.seals_checked} seals checked"
        + (", outside digest checked" if report.digest_checked else "")
    )
    if report.latest_seal:
        click.echo(f"latest seal: {report.latest_seal}")


@main.command()
@click.argument("account")
@click.option(
    "--as-of",
    "as_of",
    default=None,
    metavar="TIMESTAMP",
    help="Replay up to this moment: RFC 3339 with Z or an offset, or a date (its end, UTC).",
)
@click.option("--json", "as_json", is_flag=True)
@store_option
@friendly_errors
def history(account: str, as_of: str | None, as_json: bool, store: str | None) -> None:
    """Every event of ACCOUNT (id or creditor reference) with the balance after it."""
    moment = parse_moment(as_of) if as_of else None
    service = open_service(store)
    result = service.history(service.resolve_account(account), moment)
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
    else:
        print_history(result)


def _short(fields: dict[str, Any]) -> str:
    keep = []
    for key, value in fields.items():
        if key.endswith("_id") or value in (None, "", [], {}):
            continue
        if isinstance(value, list | dict):
            value = json.dumps(value, separators=(",", ":"))
        keep.append(f"{key}={value}")
    text = " ".join(keep)
    return text if len(text) <= 70 else text[:67] + "..."


def print_history(result: History) -> None:
    click.echo(
        f"{'ver':>4}  {'recorded at (UTC)':<20} {'event':<30} {'principal':>12} "
        f"{'interest':>10} {'fees':>9} {'total':>12}  details"
    )
    for e in result.entries:
        b = e.balance
        click.echo(
            f"{e.version:>4}  {e.recorded_at.strftime('%Y-%m-%d %H:%M:%S'):<20} {e.type:<30} "
            f"{b['principal']:>12} {b['interest']:>10} {b['fees']:>9} {b['total']:>12}  "
            f"{_short(e.fields)}"
        )
    state = result.state
    if state is None:
        click.echo("the account did not exist yet at that moment")
        return
    when = result.as_of.isoformat() if result.as_of else "now"
    balance = state["balance"]
    click.echo(
        f"\nas of {when}: status {state['status']}, balance {balance['total']} "
        f"{state['currency']} (principal {balance['principal']}, interest {balance['interest']}, "
        f"fees {balance['fees']}), paid {state['paid_total']}"
    )
    promise = state["open_promise"]
    click.echo(
        f"open promise: {promise['amount']} due {promise['due_date']}"
        if promise
        else "open promise: none"
    )
    plan = state["plan"]
    click.echo(
        f"active plan: {plan['kind']} {plan['total']}, paid {plan['paid']}"
        if plan
        else "active plan: none"
    )
    holder = state["holder"]
    flags = ", ".join(state["flags"]) or "none"
    click.echo(f"flags: {flags}; holder: {holder['kind']} {holder['name']}")


@main.command()
@store_option
@friendly_errors
def summary(store: str | None) -> None:
    """Portfolio summary by creditor, replayed from the ledger."""
    service = open_service(store)
    click.echo(
        f"{'creditor':<18} {'cur':<4} {'accounts':>8} {'placed':>14} {'collected':>12} "
        f"{'outstanding':>14} {'liq.':>6}  statuses"
    )
    for row in service.portfolio_summary():
        creditor, currency = row.creditor, row.currency
        liquidation = 100 * row.liquidation_rate
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(row.statuses.items()))
        view = row.as_dict()
        placed, paid, outstanding = view["placed"], view["collected"], view["outstanding"]
        click.echo(
            f"{creditor:<18} {currency:<4} {row.accounts:>8} {placed:>14} {paid:>12} "
            f"{outstanding:>14} {liquidation:>5.1f}%  {statuses}"
        )


if __name__ == "__main__":
    main()
