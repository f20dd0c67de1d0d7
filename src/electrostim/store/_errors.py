"""The store's errors: where they sit under :class:`~electrostim.errors.ElectrostimError`.

::

    ElectrostimError
    └── StoreError                  the database cannot be opened, migrated, read or written
        ├── RecordNotFoundError     no patient, program, plan or session with that id
        └── SessionStateError       a session is not in a state that allows the operation

Bad option values (an event kind, an end state, an export format) raise
:class:`~electrostim.errors.OptionError`, like everywhere else in electrostim.
"""

from __future__ import annotations

from ..errors import ElectrostimError

__all__ = ["StoreError", "RecordNotFoundError", "SessionStateError"]


class StoreError(ElectrostimError):
    """The database cannot be opened, migrated, read or written; the message names the database and the cause."""


class RecordNotFoundError(StoreError, LookupError):
    """No record of that kind with that id."""


class SessionStateError(StoreError):
    """The session's state does not allow the operation (e.g. appending to an ended session)."""
