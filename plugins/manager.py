"""Build the plugin manager: built-in plugins, then entry-point plugins, minus the blocked.

Only the composition root (``bootstrap``) and front ends call this; the ledger
core never sees the manager, only the callables built from it.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from collections.abc import Iterable
from dataclasses import dataclass
from types import ModuleType, TracebackType
from typing import Any

import pluggy

from plugins import hookspecs
from plugins.errors import PluginError, PluginLoadError

ENTRY_POINT_GROUP = "arrears"
DISABLE_ENV = "ARREARS_DISABLE_PLUGINS"

#: Built-in plugins: registration name -> module.  Registered exactly like external ones,
#: so ``ARREARS_DISABLE_PLUGINS`` and ``arrears plugins`` treat them the same way.
BUILTIN_PLUGINS: dict[str, str] = {
    "builtin.allocation": "plugins.builtin.allocation",
    "builtin.us_reg_f": "plugins.builtin.us_reg_f",
    "builtin.cn_collection": "plugins.builtin.cn_collection",
    "builtin.uk_conc": "plugins.builtin.uk_conc",
}


@dataclass(frozen=True)
class PluginInfo:
    """What ``arrears plugins`` shows about one registered plugin."""

    name: str
    version: str
    source: str  # "built-in" or "entry point <distribution>"
    hooks: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "source": self.source,
            "hooks": list(self.hooks),
        }


class ArrearsPluginManager(pluggy.PluginManager):
    """A pluggy manager that remembers where each plugin came from."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT)
        self.add_hookspecs(hookspecs)
        self.origins: dict[str, tuple[str, str]] = {}  # name -> (source, version)
        #: Names asked to be disabled that no built-in or installed plugin has: a typo
        #: would otherwise leave the plugin meant running without a word.
        self.unknown_disabled: list[str] = []

    def register_named(self, plugin: object, name: str, *, source: str, version: str) -> None:
        """Register ``plugin``; a plugin pluggy refuses becomes a ``PluginLoadError``."""
        if self.is_blocked(name):
            return
        try:
            self.register(plugin, name=name)
        except (ValueError, pluggy.PluginValidationError) as e:
            raise PluginLoadError(name, e, source=source) from e
        try:
            self.check_pending()  # an arrears_ hook with no spec: most likely a typo
        except pluggy.PluginValidationError as e:
            self.unregister(name=name)
            raise PluginLoadError(name, e, source=source) from e
        self.origins[name] = (source, version)

    def plugin_infos(self) -> list[PluginInfo]:
        infos = []
        for name, plugin in self.list_name_plugin():
            if plugin is None:  # blocked
                continue
            source, version = self.origins.get(name, ("registered at run time", "-"))
            hooks = sorted(c.name for c in self.get_hookcallers(plugin) or ())
            infos.append(PluginInfo(name, version, source, tuple(hooks)))
        return sorted(infos, key=lambda i: (i.source != "built-in", i.name))


def arrears_version() -> str:
    try:
        return importlib.metadata.version("arrears")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


def disabled_from_env(environ: dict[str, str] | None = None) -> set[str]:
    raw = (os.environ if environ is None else environ).get(DISABLE_ENV, "")
    return {name.strip() for name in raw.split(",") if name.strip()}


def build_plugin_manager(
    *,
    builtins: bool = True,
    entry_points: bool = True,
    disabled: Iterable[str] | None = None,
    extra: Iterable[tuple[str, object]] = (),
) -> ArrearsPluginManager:
    """A manager with the built-ins, the ``arrears`` entry points and ``extra`` plugins.

    ``disabled`` defaults to the names in ``ARREARS_DISABLE_PLUGINS``; a plugin that
    fails to import or register raises ``PluginLoadError`` naming it.
    """
    pm = ArrearsPluginManager()
    blocked = set(disabled_from_env() if disabled is None else disabled)
    for name in blocked:
        pm.set_blocked(name)
    if builtins:
        version = arrears_version()
        for name, module_name in BUILTIN_PLUGINS.items():
            if pm.is_blocked(name):
                continue
            module = _import(name, module_name)
            pm.register_named(module, name, source="built-in", version=version)
    for name, plugin in extra:
        pm.register_named(plugin, name, source="given", version="-")
    if entry_points:
        load_entry_points(pm)
    known = set(BUILTIN_PLUGINS) | {name for name, _ in extra}
    if entry_points:
        known |= {
            ep.name
            for dist in importlib.metadata.distributions()
            for ep in dist.entry_points
            if ep.group == ENTRY_POINT_GROUP
        }
    pm.unknown_disabled = sorted(blocked - known)
    return pm


def _import(name: str, module_name: str) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except Exception as e:
        raise PluginLoadError(name, e, source=module_name) from e


def load_entry_points(pm: ArrearsPluginManager, group: str = ENTRY_POINT_GROUP) -> int:
    """Like pluggy's ``load_setuptools_entrypoints``, but an import failure names the plugin.

    Returns how many plugins were registered.
    """
    count = 0
    for dist in list(importlib.metadata.distributions()):
        for ep in dist.entry_points:
            if ep.group != group or pm.get_plugin(ep.name) or pm.is_blocked(ep.name):
                continue
            dist_name = dist.metadata["name"] or "?"
            source = f"entry point {ep.value} in {dist_name}"
            try:
                plugin = ep.load()
            except Exception as e:
                raise PluginLoadError(ep.name, e, source=source) from e
            pm.register_named(
                plugin, ep.name, source=f"entry point ({dist_name})", version=dist.version
            )
            count += 1
    return count


def _culprit(caller: pluggy.HookCaller, tb: TracebackType | None) -> str | None:
    """The plugin whose hook implementation appears in ``tb``, if any."""
    codes = {}
    for impl in caller.get_hookimpls():
        code = getattr(impl.function, "__code__", None)
        if code is not None:
            codes[code] = impl.plugin_name
    while tb is not None:
        name = codes.get(tb.tb_frame.f_code)
        if name is not None:
            return name
        tb = tb.tb_next
    return None


def call_hook(pm: pluggy.PluginManager, hook: str, **kwargs: Any) -> Any:
    """Call ``hook``; an exception raised by a plugin becomes a ``PluginError`` naming it."""
    caller: pluggy.HookCaller = getattr(pm.hook, hook)
    try:
        return caller(**kwargs)
    except (PluginError, PluginLoadError):
        raise
    except Exception as e:
        plugin = _culprit(caller, e.__traceback__) or "<unknown>"
        raise PluginError(plugin, hook, e) from e
