"""``arrears placements export|recalls`` and ``arrears import activity``: agency sync files."""

from __future__ import annotations

import errno
import io
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import TextIO, TypeVar

import click

from adapters.agency.activity import ImportReport, import_activity
from adapters.agency.placements import ever_placed_with, write_placements, write_recalls
from cli.core import friendly_errors, main, open_service, store_option
from ledger import errors

T = TypeVar("T")

agency_option = click.option(
    "--agency", required=True, help="The agency's name, as the accounts were placed with it."
)
out_option = click.option(
    "--out",
    default=None,
    metavar="FILE",
    help="Write the CSV here (replaced only once complete); default: standard output.",
)


@main.group()
def placements() -> None:
    """Agency placement files (CSV): what is placed with an agency, and its recalls."""


@placements.command("export")
@agency_option
@out_option
@store_option
@friendly_errors
def export_placements(agency: str, out: str | None, store: str | None) -> None:
    """The placement file of AGENCY: every account placed with it now, with the debtor."""
    service = open_service(store)
    count = _write(out, lambda stream: write_placements(service, agency, stream))
    click.echo(f"placements: {count} accounts placed with {agency}{_where(out)}", err=True)
    if not count and not ever_placed_with(service, agency):
        click.echo(
            f"warning [unknown_agency]: no account has ever been placed with {agency!r}; "
            "check the agency's name",
            err=True,
        )


@placements.command("recalls")
@agency_option
@click.option(
    "--since", default=None, metavar="DATE", help="Only recalls on or after this date (YYYY-MM-DD)."
)
@out_option
@store_option
@friendly_errors
def export_recalls(agency: str, since: str | None, out: str | None, store: str | None) -> None:
    """The recalls from AGENCY (CSV), oldest first; POSITION orders them for the agency."""
    first_day = _day(since) if since else None
    service = open_service(store)
    count = _write(out, lambda stream: write_recalls(service, agency, stream, first_day))
    click.echo(f"recalls: {count} recalls from {agency}{_where(out)}", err=True)


@main.group("import")
def import_group() -> None:
    """Files partners send, posted into the ledger once each: importing again is safe."""


@import_group.command("activity")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@agency_option
@click.option(
    "--errors",
    "errors_file",
    default=None,
    metavar="FILE",
    help="Where to write the rejected rows (default: FILE with .errors.csv).",
)
@store_option
@friendly_errors
def import_activity_file(
    file: Path, agency: str, errors_file: str | None, store: str | None
) -> None:
    """Post an agency's activity FILE (CSV): contacts, promises, payments, status updates.

    Every row is checked first; rejected rows go to the error file with their row
    number and reason, the others are posted, each exactly once however often the
    file is imported.  Exit code 0 if every row is posted, 1 if any row is not."""
    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise errors.ValidationError(
            f"{file} is not UTF-8 text (byte {e.start}); save it as UTF-8 CSV", field="file"
        ) from e
    if not text.strip():
        raise errors.ValidationError(
            f"{file}: the file is empty; an activity file has a header row, then the rows",
            field="file",
        )
    errors_path = errors_file or str(file.with_name(file.name.removesuffix(".csv") + ".errors.csv"))
    # The error file's place is claimed before anything is posted: a path that cannot
    # be written must not cost the agency the list of its rejected rows.
    errors_out = _Output(errors_path)
    try:
        service = open_service(store)
        report = import_activity(service, agency, text, source=file.name, progress=_progress_bar)
        errors_out.write(lambda stream: _errors(report, stream))
    finally:
        errors_out.discard()
    click.echo(report.summary())
    if not report.rows:
        click.echo(f"warning [no_rows]: {file} has a header but no rows; nothing to post", err=True)
    if report.rejected:
        click.echo(f"rejected rows: {errors_path}", err=True)
    sys.exit(1 if report.rejected or report.in_flight else 0)


def _errors(report: ImportReport, stream: TextIO) -> int:
    report.write_errors(stream)
    return report.rejected


def _progress_bar(items: Sequence[T]) -> Iterable[T]:
    from tqdm import tqdm

    bar: Iterable[T] = tqdm(items, desc="import", unit="row", file=sys.stderr)
    return bar


def _write(out: str | None, produce: Callable[[TextIO], int]) -> int:
    """Run ``produce`` on a text stream and put the result at ``out`` (or on stdout)."""
    if out is None:
        buffer = io.StringIO(newline="")
        count = produce(buffer)
        click.echo(buffer.getvalue(), nl=False)
        return count
    output = _Output(out)
    try:
        return output.write(produce)
    finally:
        output.discard()


class _Output:
    """A file written beside its final name and renamed into place, so a reader never
    sees half a file, and a failure leaves the previous one as it was.

    Made before the work it records, so a path that cannot be written is refused
    (one line naming it) before anything is done."""

    def __init__(self, out: str) -> None:
        self.out = out
        self.target = Path(out)
        self.partial = self.target.with_name(f".{self.target.name}.partial")
        try:
            if self.target.is_dir():
                raise IsADirectoryError(errno.EISDIR, "it is a directory")
            self.stream: TextIO = self.partial.open("w", encoding="utf-8", newline="")
        except OSError as e:
            raise self._refused(e) from None

    def _refused(self, e: OSError) -> errors.ValidationError:
        return errors.ValidationError(
            f"cannot write {self.out}: {e.strerror or e}", field="out", path=self.out
        )

    def write(self, produce: Callable[[TextIO], int]) -> int:
        """Run ``produce`` on the file's stream, then put the file in place."""
        try:
            with self.stream:
                count = produce(self.stream)
                self.stream.flush()
                os.fsync(self.stream.fileno())
            self.partial.replace(self.target)
        except OSError as e:  # a full disk, or the directory gone meanwhile
            raise self._refused(e) from None
        return count

    def discard(self) -> None:
        """Drop the partial file unless :meth:`write` put it in place."""
        self.stream.close()
        self.partial.unlink(missing_ok=True)


def _where(out: str | None) -> str:
    return f", written to {out}" if out else ""


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise errors.InvalidDate(f"{text!r} is not a date; use e.g. 2026-03-02") from None
