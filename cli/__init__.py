"""The ``arrears`` command line: thin commands that parse, call the service layer and print.

Commands live in modules by area; each registers itself on ``main`` when imported.
"""

from __future__ import annotations

from cli import agency as _agency  # noqa: F401  (registers commands)
from cli import compliance as _compliance  # noqa: F401  (registers commands)
from cli import observers as _observers  # noqa: F401  (registers commands)
from cli import outbox as _outbox  # noqa: F401  (registers commands)
from cli import plugins as _plugins  # noqa: F401  (registers commands)
from cli import projections as _projections  # noqa: F401  (registers commands)
from cli import reports as _reports  # noqa: F401  (registers commands)
from cli import sale as _sale  # noqa: F401  (registers commands)
from cli import serve as _serve  # noqa: F401  (registers commands)
from cli import tokens as _tokens  # noqa: F401  (registers commands)
from cli import worker as _worker  # noqa: F401  (registers commands)
from cli import worklist as _worklist  # noqa: F401  (registers commands)
from cli.core import main

__all__ = ["main"]
