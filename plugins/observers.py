"""``arrears_event_committed`` as the core's observers: one per hook implementation.

The dispatcher (``ledger.observers``) never sees pluggy.  Each implementation
becomes its own ``Observer``, named after its plugin, so each keeps its own
position and a plugin that fails is retried and parked alone, without touching
the others (one call of the hook would stop at the first plugin that raised).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

from ledger.observers import Observer

HOOK = "arrears_event_committed"


def _notifier(impl: pluggy.HookImpl) -> Callable[[Any, int], None]:
    """Call ``impl`` with the arguments it asks for, as pluggy would (a subset, in its order)."""
    function, argnames = impl.function, impl.argnames

    def notify(event: Any, position: int) -> None:
        given = {"event": event, "position": position}
        function(*(given[name] for name in argnames))

    return notify


def observers_from(pm: pluggy.PluginManager) -> list[Observer]:
    """An ``Observer`` per plugin implementing ``arrears_event_committed``.

    Named after the plugin; a plugin with several implementations of the hook
    (``specname``) gets ``plugin:function`` names.  Wrappers wrap calls of the
    hook, which the dispatcher never makes, so they are left out.
    """
    impls = [i for i in getattr(pm.hook, HOOK).get_hookimpls() if not (i.hookwrapper or i.wrapper)]
    impls.sort(key=lambda i: i.plugin_name)
    counts: dict[str, int] = {}
    for impl in impls:
        counts[impl.plugin_name] = counts.get(impl.plugin_name, 0) + 1
    observers = []
    for impl in impls:
        name = impl.plugin_name
        if counts[name] > 1:
            name = f"{name}:{getattr(impl.function, '__name__', 'notify')}"
        observers.append(Observer(name, _notifier(impl)))
    return observers
