"""The ``file`` channel: each message becomes one JSON file in a directory.

Useful for demos, tests and hand-offs to a print shop's drop folder.  The directory
is ``ARREARS_FILE_CHANNEL_DIR`` (default ``./outbox-files``), created on first send.

- **Idempotent by message id**: sending a message id again leaves the one file as it
  is; the delivery reports it was already written.  Reusing an id for a *different*
  message fails (``status="failed"``) instead of silently dropping or overwriting it.
- **Atomic**: the JSON is written to a temporary file in the same directory, synced,
  then renamed over the final name, so a reader never sees half a message.
- A written file is the delivery: ``send`` and ``delivery`` report ``"delivered"``
  with the moment it was written; an id never sent reports ``"failed"``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from plugins import Delivery, OutboundMessage

NAME_ENV = "ARREARS_FILE_CHANNEL_NAME"
DIR_ENV = "ARREARS_FILE_CHANNEL_DIR"
DEFAULT_DIR = "./outbox-files"
CONTENT_FIELDS = ("channel", "to", "subject", "body", "locale")


def _now() -> datetime:
    return datetime.now(UTC)


class FileChannel:
    """A ``Channel`` that writes each message to ``<directory>/<message id>.json``."""

    name = "file"

    def __init__(
        self,
        directory: str | Path | None = None,
        *,
        clock: Callable[[], datetime] = _now,
        name: str | None = None,
    ) -> None:
        self.directory = Path(directory or os.environ.get(DIR_ENV) or DEFAULT_DIR)
        self.clock = clock
        # Named like one of the ledger's channels (e.g. "letter", via
        # ARREARS_FILE_CHANNEL_NAME), Arrears' outbox hands it that channel's messages.
        self.name = name or os.environ.get(NAME_ENV) or "file"

    def path(self, message_id: str) -> Path:
        """Where a message's file is: its id, percent-encoded so it stays in the directory."""
        if not message_id:
            raise ValueError("a message needs a non-empty message_id")
        stem = quote(message_id, safe="")
        if len(stem) > 200:  # file names are limited to 255 bytes
            stem = "sha256-" + hashlib.sha256(message_id.encode()).hexdigest()
        return self.directory / f"{stem}.json"

    def send(self, message: OutboundMessage) -> Delivery:
        """Write ``message`` unless its id was written before; report the delivery."""
        target = self.path(message.message_id)
        record: dict[str, Any] = {
            "message_id": message.message_id,
            **{f: getattr(message, f) for f in CONTENT_FIELDS},
        }
        if target.exists():
            existing = self._read(target)
            if {f: existing.get(f) for f in CONTENT_FIELDS} != {
                f: record[f] for f in CONTENT_FIELDS
            }:
                return Delivery(
                    message.message_id,
                    "failed",
                    _written_at(existing),
                    f"message id already used for a different message in {target}",
                )
            return Delivery(
                message.message_id, "delivered", _written_at(existing), f"already written: {target}"
            )
        written_at = self.clock()
        record["written_at"] = written_at.isoformat()
        self._write_atomically(target, record)
        return Delivery(message.message_id, "delivered", written_at, f"written: {target}")

    def delivery(self, message_id: str) -> Delivery:
        """``delivered`` (with when) if the file is there, ``failed`` if never sent."""
        target = self.path(message_id)
        if not target.exists():
            return Delivery(message_id, "failed", None, f"never sent on this channel: {target}")
        return Delivery(message_id, "delivered", _written_at(self._read(target)), str(target))

    def _write_atomically(self, target: Path, record: dict[str, Any]) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(record, f, ensure_ascii=False, indent=2)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @staticmethod
    def _read(target: Path) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(target.read_text(encoding="utf-8"))
        return data


def _written_at(record: dict[str, Any]) -> datetime | None:
    text = record.get("written_at")
    return datetime.fromisoformat(text) if isinstance(text, str) else None
