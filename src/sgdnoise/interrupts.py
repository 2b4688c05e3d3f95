"""Stopping a run cleanly on Ctrl-C (SIGINT) or SIGTERM, keeping what it measured.

Inside :func:`graceful_stop` the first SIGINT or SIGTERM does not raise: it sets a
flag and says so on stderr.  Every long loop of the package asks
:func:`stop_requested` between chunks of work and, when asked to stop, leaves
its loop with what it has measured so far; the run then returns a result whose
status says where it stopped, and the command writes its folder as usual and
exits with status 1.  A second SIGINT ends the process at once with status 130 (for a
user who does not want to wait for the current chunk): ``os._exit``, not
:class:`KeyboardInterrupt`, which could land inside a library's destructor or compiler
(numba's llvmlite) and print a traceback there.  Checkpoints and result files are
written atomically, so what is on disk stays readable.

Outside :func:`graceful_stop` (e.g. when the package is used from Python),
signals keep Python's default behaviour and :func:`stop_requested` is always None.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

_requested: list[str] = []
_HANDLED = (signal.SIGINT, signal.SIGTERM)


def stop_requested() -> str | None:
    """The name of the signal that asked the run to stop (``SIGINT``, ``SIGTERM``), or None."""
    return _requested[0] if _requested else None


class StopRequested(Exception):
    """Raised by a long solve that cannot return a partial answer, when a stop was requested.

    The caller that runs such a solve inside a measurement catches it and records the solve as
    skipped, keeping what was measured (e.g. the epoch closure, docs/theory.md §3g).
    """


def raise_if_stop_requested() -> None:
    """Raise :class:`StopRequested` if Ctrl-C or SIGTERM asked the run to stop (never outside :func:`graceful_stop`)."""
    if _requested:
        raise StopRequested(_requested[0])


def exit_status_after_stop() -> int:
    """1 if a stop was requested during the run (even one that finished its work), else 0."""
    return 1 if _requested else 0


def request_stop(name: str = "request") -> None:
    """Ask the running loops to stop, as a signal would (for tests and embedding code)."""
    if not _requested:
        _requested.append(name)


def _handler(signum: int, frame: FrameType | None) -> None:
    name = signal.Signals(signum).name
    if _requested and signum == signal.SIGINT:
        sys.stderr.write("\nSIGINT again: quitting now; what was measured since the last checkpoint is lost\n")
        sys.stderr.flush()
        os._exit(130)
    if not _requested:
        _requested.append(name)
        sys.stderr.write(f"\n{name}: stopping after the current chunk of work and writing what was "
                         "measured (Ctrl-C again to quit at once, losing it)\n")
        sys.stderr.flush()


@contextmanager
def graceful_stop() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM ask for a clean stop instead of killing the run.

    Only the main thread can install signal handlers; elsewhere the block does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in _HANDLED}
    _requested.clear()
    for s in _HANDLED:
        signal.signal(s, _handler)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _requested.clear()


def announce_phase(name: str) -> None:
    """Record the phase the run has entered (e.g. ``burn-in``, ``measurement``, ``writing``).

    When the environment variable ``SGDNOISE_PHASE_FILE`` names a file, the phase
    name is appended to it as a line: a way to monitor a long run from outside
    (and how the tests send a real signal at a chosen moment).
    """
    path = os.environ.get("SGDNOISE_PHASE_FILE")
    if path:
        with open(path, "a") as handle:
            handle.write(name + "\n")
