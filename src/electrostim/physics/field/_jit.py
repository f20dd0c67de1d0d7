"""numba's ``njit``/``prange``, or stand-ins that run the kernels as plain Python.

Set ``ELECTROSTIM_NO_NUMBA=1`` (or ``NUMBA_DISABLE_JIT=1``, which numba honours
itself) to run every kernel as ordinary Python: slow, but steppable in a debugger and
visible to coverage. When numba is not installed the stand-ins are used silently.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

__all__ = ["njit", "prange", "HAVE_NUMBA"]


def _identity_njit(*args: Any, **kwargs: Any) -> Any:
    if len(args) == 1 and callable(args[0]) and not kwargs:
        return args[0]

    def wrap(func: Callable[..., Any]) -> Callable[..., Any]:
        return func

    return wrap


if os.environ.get("ELECTROSTIM_NO_NUMBA"):
    njit: Any = _identity_njit
    prange: Any = range
    HAVE_NUMBA = False
else:
    try:
        from numba import njit, prange  # type: ignore[no-redef]

        HAVE_NUMBA = True
    except ImportError:  # pragma: no cover - numba is a declared dependency
        njit = _identity_njit
        prange = range
        HAVE_NUMBA = False
