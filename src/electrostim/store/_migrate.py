"""Alembic, driven from Python with the migrations shipped in the package.

Users never need an ``alembic.ini``: :func:`upgrade` builds the configuration in
memory and points it at ``migrations/`` next to this file. Developers who write a new
revision use the ``alembic.ini`` beside it::

    alembic -c src/electrostim/store/alembic.ini revision --autogenerate -m "what changed"

(the database is ``$ELECTROSTIM_DATABASE_URL`` or the default file; point it at a
scratch database upgraded to head).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import StoreError

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Connection

__all__ = ["MIGRATIONS_DIR", "alembic_config", "head_revision", "current_revision", "check_known", "upgrade", "run_env"]

#: The Alembic script directory shipped with the package.
MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")


def alembic_config(connection: Connection | None = None) -> Config:
    """An in-memory Alembic configuration for the packaged migrations (optionally bound to a connection)."""
    from alembic.config import Config

    cfg = Config(stdout=sys.stdout)  # the stream of now, not the one alembic saw when first imported
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest revision this electrostim knows."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at (None for a database without the store's schema)."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: Connection, where: str) -> str:
    """Upgrade the database on ``connection`` (inside its transaction) to the newest revision; return it."""
    from alembic import command
    from alembic.script import ScriptDirectory

    cfg = alembic_config(connection)
    head = ScriptDirectory.from_config(cfg).get_current_head()
    current = current_revision(connection)
    if current is not None:
        check_known(current, where)
    command.upgrade(cfg, "head")
    assert head is not None
    return head


def check_known(revision: str, where: str) -> None:
    """Refuse a schema revision this electrostim does not know (one written by a newer electrostim)."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    if revision not in {rev.revision for rev in script.walk_revisions()}:
        raise StoreError(
            f"The database {where} is at schema revision {revision!r}, which this electrostim does not know "
            f"(its newest is {script.get_current_head()!r}): it was written by a newer electrostim. Upgrade electrostim to use it."
        )


def run_env(context: Any) -> None:
    """The body of ``migrations/env.py``: run the migrations Alembic asks for."""
    from ._tables import Base

    config = context.config
    options = {"target_metadata": Base.metadata, "compare_type": True}
    if context.is_offline_mode():
        from ._engine import resolve_url

        url = resolve_url(config.get_main_option("sqlalchemy.url") or None)
        context.configure(url=url, literal_binds=True, render_as_batch=url.get_backend_name() == "sqlite", **options)
        with context.begin_transaction():
            context.run_migrations()
        return

    connection = config.attributes.get("connection")
    if connection is not None:  # electrostim's own upgrade: the caller owns the transaction
        _run_online(context, connection, options)
        return

    # the alembic command line (developers): open the database the store would open
    from ._engine import WRITE_OPTION, make_engine, resolve_url

    engine = make_engine(resolve_url(config.get_main_option("sqlalchemy.url") or None))
    try:
        with engine.execution_options(**{WRITE_OPTION: True}).begin() as connection:
            _run_online(context, connection, options)
    finally:
        engine.dispose()


def _run_online(context: Any, connection: Connection, options: dict[str, Any]) -> None:
    context.configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite", **options)
    with context.begin_transaction():
        context.run_migrations()
