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

import os
import signal

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
    cli_main()


if __name__ == "__main__":
    main()
