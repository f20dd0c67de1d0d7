"""``python -m electrostim`` and the ``electrostim`` command: the entry point.

Ctrl-C, SIGTERM and SIGHUP end the command with one line and exit code 128 + the
signal's number, whenever they come: while the command line is still being imported
(nothing has been created then), and afterwards (a session in progress handles them
itself: output zero first, then the record; see ``electrostim.session.deliver``).

A signal that comes while the Python interpreter itself is starting, before this entry
point runs, ends the process by the system's default action (nothing exists yet). A
launcher that must not lose one blocks these signals before it starts the command: the
entry point unblocks them once its handlers are in place, and a signal that was
pending then is handled as above.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
from typing import NoReturn, cast

_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


def _while_importing(signum: int, frame: object) -> None:
    # nothing exists yet that needs cleaning up: say so in one line and end at once
    os.write(2, f"interrupted by {signal.Signals(signum).name} before anything was done\n".encode())
    os._exit(128 + signum)


def main() -> None:
    """Run the ``electrostim`` command line."""
    previous = {s: signal.signal(s, _while_importing) for s in _SIGNALS}
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)  # a launcher may have held them until now
    from .cli._app import install_signal_handlers
    from .cli._app import main as cli_main

    ignored = [s for s, handler in previous.items() if handler == signal.SIG_IGN]  # nohup, a background job
    install_signal_handlers()
    for s in ignored:
        signal.signal(s, signal.SIG_IGN)
    try:
        cli_main()
    except SystemExit as exc:
        from .cli._app import ends_at_once

        if ends_at_once():
            _end_now(exc.code)
        raise


def _end_now(code: object) -> NoReturn:
    """End a command that wrote only to its standard output and error, its work done, without tearing the
    interpreter down (a tenth of a second or more once numba's compiler is loaded): its exit handlers run and its
    streams are flushed first; ``code`` as ``SystemExit`` takes it (None 0, a text said on standard error and 1)."""
    if isinstance(code, str):
        sys.stderr.write(code + "\n")
        status = 1
    else:
        status = 0 if code is None else int(cast(int, code))
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # (a closed pipe: nothing more can reach it)
            pass
    os._exit(status)


if __name__ == "__main__":
    main()
