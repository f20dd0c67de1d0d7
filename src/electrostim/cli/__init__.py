"""The ``electrostim`` command line (Typer + Rich): a thin face over the public API."""

from ._app import app, main
from . import _demo, _emulate, _fibers, _run, _sessions  # noqa: F401  (register the commands)

__all__ = ["app", "main"]
