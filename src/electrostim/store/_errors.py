"""The store's errors: where they sit under :class:`~electrostim.errors.ElectrostimError`.

::

    ElectrostimError
    └── StoreError                  the database cannot be opened, migrated, read or written
        ├── RecordNotFoundError     (also an InvalidInputError) no patient, program, plan or session with that id
        ├── SessionStateError       a session is not in a state that allows the operation
        ├── StoreNotFoundError      (also an InvalidInputError) no database to read at that path
        ├── StoreLocationError      (also an InvalidInputError) the place named cannot hold a store: a folder,
        │   │                       an unsupported kind of database URL, an in-memory database
        │   └── StoreNotADatabaseError  (also a StoreDamagedError) a file that is not SQLite at all
        ├── StoreDamagedError       the database file is damaged; nothing was written to it
        └── StoreReadOnlyError      a write asked of a store opened with ``readonly=True``

The errors that are also :class:`~electrostim.errors.InvalidInputError` name a bad
input (a ``--db`` or a session id): the command line exits with code 2 for them, and
nothing was created or written.

Bad option values (an event kind, an end state, an export format) raise
:class:`~electrostim.errors.OptionError`, like everywhere else in electrostim.
"""

from __future__ import annotations

from ..errors import ElectrostimError, InvalidInputError

__all__ = [
    "StoreError",
    "RecordNotFoundError",
    "SessionStateError",
    "StoreNotFoundError",
    "StoreLocationError",
    "StoreNotADatabaseError",
    "StoreDamagedError",
    "StoreReadOnlyError",
]


class StoreError(ElectrostimError):
    """The database cannot be opened, migrated, read or written; the message names the database and the cause."""


class RecordNotFoundError(StoreError, InvalidInputError, LookupError):
    """No record of that kind with that id (bad input: the CLI exits with code 2)."""


class SessionStateError(StoreError):
    """The session's state does not allow the operation (e.g. appending to an ended session)."""


class StoreNotFoundError(StoreError, InvalidInputError):
    """There is no database at the path given, and reading never creates one (the CLI exits with code 2)."""


class StoreLocationError(StoreError, InvalidInputError):
    """The database named cannot be a store: a folder, an unsupported database URL, an in-memory database.

    Bad input (the CLI exits with code 2); nothing was created or written.
    """


class StoreDamagedError(StoreError):
    """The database file is damaged (empty, not SQLite, failing SQLite's checks or a row's checksum).

    Nothing was written to it. The message quotes the first problem found and names
    the command that copies what can still be read into a new file
    (``electrostim sessions recover``, :meth:`Store.recover`).
    """


class StoreReadOnlyError(StoreError):
    """A write was asked of a store opened for reading only (``Store.open(..., readonly=True)``)."""


class StoreNotADatabaseError(StoreDamagedError, StoreLocationError):
    """The file named is not an SQLite database at all (its first bytes are not SQLite's).

    Most often a wrong ``--db`` (bad input: the CLI exits with code 2); it may also be a
    store whose first page was destroyed, which nothing can read (a
    :class:`StoreDamagedError` too). Nothing was written to it.
    """
