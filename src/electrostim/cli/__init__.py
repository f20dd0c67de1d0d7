"""The ``electrostim`` command line (Typer + Rich): a thin face over the public API."""

from ._app import app, main
from . import _fibers, _run, _sessions  # noqa: F401  (register the 'fibers', 'run' and 'sessions' commands)

__all__ = ["app", "main"]
