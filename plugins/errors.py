"""Errors that name the plugin at fault.

They are ``LedgerError``s, so every front end (CLI, HTTP) already reports them
as one line with a stable code, never as a traceback.
"""

from __future__ import annotations

from ledger.errors import LedgerError


def describe(cause: BaseException) -> str:
    """``TypeName: first line of the message``."""
    text = str(cause).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(cause).__name__}{': ' + first if first else ''}"


class PluginError(LedgerError):
    """A plugin raised inside a hook, or returned something unusable."""

    code = "plugin_error"

    def __init__(self, plugin: str, hook: str, cause: BaseException | str) -> None:
        reason = cause if isinstance(cause, str) else describe(cause)
        super().__init__(f"plugin {plugin!r} failed in {hook}: {reason}", plugin=plugin, hook=hook)
        self.plugin = plugin
        self.hook = hook


class PluginLoadError(LedgerError):
    """A plugin could not be imported or registered."""

    code = "plugin_load_error"

    def __init__(self, plugin: str, cause: BaseException | str, *, source: str = "") -> None:
        reason = cause if isinstance(cause, str) else describe(cause)
        where = f" (from {source})" if source else ""
        hint = "; set ARREARS_DISABLE_PLUGINS to skip it"
        super().__init__(
            f"plugin {plugin!r}{where} could not be loaded: {reason}{hint}", plugin=plugin
        )
        self.plugin = plugin
