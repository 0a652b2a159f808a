"""Routes contributed by plugins (``arrears_http_routes``), mounted behind authentication.

A plugin's route ``Route("GET", "/status", handler)`` is served at
``/v1/plugins/<plugin name>/status``.  Its path may name parameters as Sanic does
(``/things/<thing_id>``).  The handler gets the Sanic request, with the caller in
``request.ctx.principal`` and the service in ``request.ctx.service``, and the path
parameters as keyword arguments.  A plain function runs in the thread pool (it may
call the synchronous service); a coroutine function runs on the event loop.  It
may return a Sanic response, a JSON-able value (200), or ``(status, value)``.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pluggy

from plugins.errors import PluginError
from plugins.types import Route

PREFIX = "/v1/plugins"
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
_PARAM = re.compile(r"<([A-Za-z_][A-Za-z0-9_]*)(?::[^>]*)?>")


@dataclass(frozen=True)
class PluginRoute:
    plugin: str
    method: str
    path: str  # as mounted, Sanic syntax
    handler: Callable[..., Any]
    name: str
    summary: str

    @property
    def openapi_path(self) -> str:
        return _PARAM.sub(r"{\1}", self.path)

    @property
    def path_params(self) -> list[str]:
        return _PARAM.findall(self.path)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_") or "route"


def collect(pm: pluggy.PluginManager | None) -> list[PluginRoute]:
    """Every plugin's routes, mounted under ``/v1/plugins/<plugin>``; a bad one names its
    plugin (``PluginError``)."""
    if pm is None:
        return []
    hook = "arrears_http_routes"
    found: list[PluginRoute] = []
    for impl in getattr(pm.hook, hook).get_hookimpls():
        plugin = impl.plugin_name
        try:
            routes = list(impl.function() or ())
        except Exception as e:
            raise PluginError(plugin, hook, e) from e
        for n, route in enumerate(routes):
            if not isinstance(route, Route):
                raise PluginError(plugin, hook, f"returned {type(route).__name__}, not a Route")
            method = route.method.upper()
            if method not in METHODS or not route.path.startswith("/"):
                raise PluginError(
                    plugin,
                    hook,
                    f"route {route.method} {route.path!r}: need a method of "
                    f"{', '.join(sorted(METHODS))} and a path starting with /",
                )
            doc = inspect.getdoc(route.handler) or route.name or route.path
            found.append(
                PluginRoute(
                    plugin=plugin,
                    method=method,
                    path=f"{PREFIX}/{plugin}{route.path.rstrip('/') or ''}",
                    handler=route.handler,
                    name=f"plugin_{_slug(plugin)}_{_slug(route.name or str(n))}_{n}",
                    summary=doc.strip().splitlines()[0],
                )
            )
    return found
