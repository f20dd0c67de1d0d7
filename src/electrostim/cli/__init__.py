"""The ``electrostim`` command line (Typer + Rich): a thin face over the public API."""

from ._app import app, main

__all__ = ["app", "main"]
