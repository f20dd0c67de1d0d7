"""Keep: the session log and what it refers to, in SQLite (default) or PostgreSQL.

:class:`Store` records patients (pseudonymous ids), the programs used (each distinct
content once), approved plans, sessions and their events. Events are appended as
they happen, each in its own committed transaction, so a killed process leaves a
complete log; :meth:`Store.mark_interrupted` at the next start marks what it left
running as ``interrupted``.

``Store.open(url, readonly=True)`` reads without writing anything (no migration, no
new file, nothing beside the file), so a store on read-only media or a full disk can
be read. Every open checks an SQLite file first and refuses a damaged one with
:class:`StoreDamagedError`; every row carries a checksum that is checked when it is
read (and, for the newest rows, when a store is opened for writing:
:meth:`Store.verify_checksums`); :meth:`Store.recover` copies what can still be read
into a new store. A place that cannot hold a store (a folder, a file that is not SQLite,
an unsupported database URL) is :class:`StoreLocationError`, and a session id that is
not there :class:`RecordNotFoundError`: both are bad input (``InvalidInputError``, exit
code 2 on the command line); :func:`check_location` tells the first before anything is
opened or created.

The database is ``electrostim.db`` in the user's data folder unless
``$ELECTROSTIM_DATABASE_URL`` or ``Store.open(url)`` names another (an SQLite path or
URL, or ``postgresql+psycopg://…``). The schema is managed by Alembic migrations
shipped in the package; :meth:`Store.open` applies them.

Examples
--------
>>> import tempfile, pathlib
>>> from electrostim.store import Store
>>> with tempfile.TemporaryDirectory() as folder, Store.open(pathlib.Path(folder) / "log.db") as store:
...     patient = store.add_patient("P-1")
...     settings = store.database_settings()
>>> patient.id, settings["journal_mode"], settings["synchronous"]
('P-1', 'wal', 'full')
"""

from ._engine import DATABASE_URL_ENV, default_database_path, resolve_url
from ._errors import (
    RecordNotFoundError,
    SessionStateError,
    StoreDamagedError,
    StoreError,
    StoreLocationError,
    StoreNotADatabaseError,
    StoreNotFoundError,
    StoreReadOnlyError,
)
from ._integrity import check_location
from ._schemas import (
    EventKind,
    EventRecord,
    PatientRecord,
    PlanRecord,
    ProgramRecord,
    SessionDetail,
    SessionRecord,
    SessionState,
)
from ._store import CSV_COLUMNS, EXPORT_FORMATS, Store, program_content_hash
from ._tables import END_STATES, EVENT_KINDS, SESSION_STATES

__all__ = [
    "CSV_COLUMNS",
    "DATABASE_URL_ENV",
    "END_STATES",
    "EVENT_KINDS",
    "EXPORT_FORMATS",
    "SESSION_STATES",
    "EventKind",
    "EventRecord",
    "PatientRecord",
    "PlanRecord",
    "ProgramRecord",
    "RecordNotFoundError",
    "SessionDetail",
    "SessionRecord",
    "SessionState",
    "SessionStateError",
    "Store",
    "StoreDamagedError",
    "StoreError",
    "StoreLocationError",
    "StoreNotADatabaseError",
    "StoreNotFoundError",
    "StoreReadOnlyError",
    "check_location",
    "default_database_path",
    "program_content_hash",
    "resolve_url",
]
