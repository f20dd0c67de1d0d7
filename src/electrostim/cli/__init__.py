"""The ``electrostim`` command line (Typer + Rich): a thin face over the public API."""

from ._app import app, main
from . import _fibers  # noqa: F401  (registers the 'fibers' commands)

__all__ = ["app", "main"]
