"""The ``electrostim`` command line (Typer + Rich): a thin face over the public API."""

from ._app import app, main
from . import _fibers, _run  # noqa: F401  (register the 'fibers' and 'run' commands)

__all__ = ["app", "main"]
