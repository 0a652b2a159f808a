"""The ``file`` channel: one JSON file per message, written atomically, once per id."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from plugins import Channel, OutboundMessage
from plugins.manager import ArrearsPluginManager, call_hook

from arrears_holidays.channel import DIR_ENV, FileChannel

WRITTEN = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
HELLO = OutboundMessage("msg-1", "file", "email:0", "Your balance is $1,200.00.", "Your account")


@pytest.fixture
def channel(tmp_path: Path) -> FileChannel:
    return FileChannel(tmp_path / "out", clock=lambda: WRITTEN)


def test_the_plugin_provides_the_file_channel_in_the_configured_directory(
    arrears_plugin_manager: ArrearsPluginManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """arrears_channels gives one Channel named "file", writing where the env var says."""
    monkeypatch.setenv(DIR_ENV, str(tmp_path / "drop"))
    (file_channel,) = [
        c for batch in call_hook(arrears_plugin_manager, "arrears_channels") for c in batch
    ]
    assert isinstance(file_channel, Channel) and file_channel.name == "file"
    assert file_channel.send(HELLO).status == "delivered"
    assert (tmp_path / "drop" / "msg-1.json").exists()


def test_the_directory_defaults_to_outbox_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without ARREARS_FILE_CHANNEL_DIR, messages go to ./outbox-files."""
    monkeypatch.delenv(DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    FileChannel().send(HELLO)
    assert (tmp_path / "outbox-files" / "msg-1.json").exists()


def test_a_message_becomes_one_json_file(channel: FileChannel) -> None:
    """The file holds the message and when it was written; the delivery says delivered."""
    delivery = channel.send(HELLO)
    assert (delivery.message_id, delivery.status, delivery.at) == ("msg-1", "delivered", WRITTEN)
    written = json.loads((channel.directory / "msg-1.json").read_text())
    assert written == {
        "message_id": "msg-1",
        "channel": "file",
        "to": "email:0",
        "subject": "Your account",
        "body": "Your balance is $1,200.00.",
        "locale": "en-US",
        "written_at": "2026-03-02T14:00:00+00:00",
    }


def test_sending_the_same_message_twice_leaves_one_file(channel: FileChannel) -> None:
    """A retried send is recognised by its message id; the file is not rewritten."""
    channel.send(HELLO)
    first = (channel.directory / "msg-1.json").read_bytes()
    channel.clock = lambda: datetime(2026, 3, 3, tzinfo=UTC)
    again = channel.send(HELLO)
    assert again.status == "delivered" and again.at == WRITTEN and "already written" in again.detail
    assert [p.name for p in channel.directory.iterdir()] == ["msg-1.json"]  # no temp file left
    assert (channel.directory / "msg-1.json").read_bytes() == first


def test_a_different_message_under_a_used_id_fails(channel: FileChannel) -> None:
    """Reusing an id for other content is reported, not silently dropped or overwritten."""
    channel.send(HELLO)
    other = OutboundMessage("msg-1", "file", "email:0", "Something else")
    delivery = channel.send(other)
    assert delivery.status == "failed" and "different message" in delivery.detail
    assert json.loads((channel.directory / "msg-1.json").read_text())["body"] == HELLO.body


def test_delivery_reports_what_was_written_and_what_was_not(channel: FileChannel) -> None:
    """delivery() is "delivered" with the write time for a sent id, "failed" for another."""
    channel.send(HELLO)
    assert channel.delivery("msg-1").status == "delivered"
    assert channel.delivery("msg-1").at == WRITTEN
    never = channel.delivery("msg-2")
    assert never.status == "failed" and "never sent" in never.detail


def test_a_message_id_cannot_escape_the_directory(channel: FileChannel) -> None:
    """Ids are percent-encoded into file names: "../x" stays inside the directory."""
    channel.send(OutboundMessage("../x", "file", "email:0", "hi"))
    assert [p.name for p in channel.directory.iterdir()] == ["..%2Fx.json"]
    assert channel.delivery("../x").status == "delivered"
    with pytest.raises(ValueError, match="non-empty"):
        channel.send(OutboundMessage("", "file", "email:0", "hi"))


def test_a_failed_write_leaves_no_file(
    channel: FileChannel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the rename never happens, neither the message nor a temp file is left behind."""

    def crash(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("arrears_holidays.channel.os.replace", crash)
    with pytest.raises(OSError, match="disk full"):
        channel.send(HELLO)
    assert list(channel.directory.iterdir()) == []
    assert channel.delivery("msg-1").status == "failed"
