"""The ``holidays`` plugin: what Arrears loads through the ``arrears`` entry point."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from plugins import Channel, Verdict, hookimpl

from arrears_holidays import rule
from arrears_holidays.channel import FileChannel


@hookimpl
def arrears_contact_rules(
    debtor: Mapping[str, Any], channel: str, at: datetime
) -> Sequence[Verdict]:
    """``holidays.public_holiday``: block contact on the debtor's public holidays."""
    return rule.judge(debtor, channel, at)


@hookimpl
def arrears_channels() -> Sequence[Channel]:
    """The ``file`` channel, writing into ``ARREARS_FILE_CHANNEL_DIR``."""
    return [FileChannel()]
