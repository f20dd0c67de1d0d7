"""The one numba switch of electrostim: ``njit`` and ``prange`` for every kernel, or plain-Python stand-ins.

Every numba kernel of the package (``waveform/_kernels.py``,
``physics/field/_kernels.py``, ``physics/fibres/_kernels.py``) takes its decorator
from here, never from numba itself, so that one switch covers them all:

* ``ELECTROSTIM_NO_NUMBA=1`` (any non-empty value but ``0``) runs every kernel as
  ordinary Python: slow, but steppable in a debugger and visible to coverage. numba is
  then not imported at all.
* ``NUMBA_DISABLE_JIT=1`` is honoured by numba itself (its dispatchers then call the
  Python functions).
* When numba is not installed the stand-ins are used silently (numba is a declared
  dependency, so this happens only in a stripped environment).

The switch is read once, when this module is first imported: set it before the first
kernel module is imported (for instance in the environment of a new process).

Examples
--------
>>> from electrostim._jit import njit
>>> @njit(cache=False)
... def add(a, b):
...     return a + b
>>> add(1, 2)
3
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

__all__ = ["HAVE_NUMBA", "NO_NUMBA_ENV", "njit", "numba_disabled", "prange"]

#: the environment variable that turns the kernels into plain Python
NO_NUMBA_ENV = "ELECTROSTIM_NO_NUMBA"


def numba_disabled(environ: dict[str, str] | None = None) -> bool:
    """Whether ``ELECTROSTIM_NO_NUMBA`` asks for plain-Python kernels (set, non-empty and not ``0``).

    Examples
    --------
    >>> numba_disabled({"ELECTROSTIM_NO_NUMBA": "1"}), numba_disabled({"ELECTROSTIM_NO_NUMBA": "0"}), numba_disabled({})
    (True, False, False)
    """
    value = (os.environ if environ is None else environ).get(NO_NUMBA_ENV, "").strip()
    return value not in ("", "0")


def _identity_njit(*args: Any, **kwargs: Any) -> Any:
    """``njit`` that returns the function itself, used bare (``@njit``) or with options (``@njit(cache=True)``)."""
    if len(args) == 1 and callable(args[0]) and not kwargs:
        return args[0]

    def wrap(func: Callable[..., Any]) -> Callable[..., Any]:
        return func

    return wrap


njit: Any
prange: Any
if numba_disabled():
    njit, prange, HAVE_NUMBA = _identity_njit, range, False
else:
    try:
        from numba import njit, prange

        HAVE_NUMBA = True
    except ImportError:  # pragma: no cover - numba is a declared dependency
        njit, prange, HAVE_NUMBA = _identity_njit, range, False
