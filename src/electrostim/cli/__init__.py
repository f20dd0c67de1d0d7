"""The ``electrostim`` command line (Typer + Rich): a thin face over the public API."""

from . import _demo, _emulate, _fibers, _run, _sessions  # noqa: F401  (register the commands)
from ._app import app, main

__all__ = ["app", "main"]
