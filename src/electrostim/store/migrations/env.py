"""Alembic environment for the electrostim store: the work is done by ``electrostim.store._migrate.run_env``.

Alembic runs this file; importing it anywhere else (e.g. when a test collects every
module for doctests) does nothing.
"""

from alembic import context

from electrostim.store._migrate import run_env

if getattr(context, "_proxy", None) is not None:  # set only while Alembic runs an environment
    run_env(context)
