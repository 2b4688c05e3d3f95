"""Progress bars: shown on a terminal, silent in logs, pipes and CI, or sent to a reporter.

A sweep worker installs a reporter (:func:`report_to`): every bar then sends its state (``desc``,
``n``, ``total``, ``unit``) to it at most once a second instead of drawing on a terminal, and the
sweep's driver shows it as the status line of the running cell (docs/sweeps.md).
"""
from __future__ import annotations

import io
import threading
from collections.abc import Callable
from typing import Any

from tqdm.auto import tqdm
from tqdm.std import tqdm as plain_tqdm

Reporter = Callable[[dict[str, Any]], None]
_reporter: Reporter | None = None


def report_to(reporter: Reporter | None) -> Reporter | None:
    """Send every bar made from now on (with ``progress`` true) to ``reporter``; None: the terminal again.

    Returns the reporter installed before.
    """
    global _reporter
    previous, _reporter = _reporter, reporter
    return previous


def use_thread_lock() -> None:
    """Let this process's bars share a thread lock instead of tqdm's default multiprocessing lock.

    tqdm's default lock holds a POSIX semaphore registered with multiprocessing's resource
    tracker; a sweep worker ended on Ctrl-C never releases it, and the tracker then warns of
    "leaked semaphore objects" when the sweep exits.  A worker's bars never draw on a terminal
    shared with other processes, so a thread lock is all they need.
    """
    plain_tqdm.set_lock(threading.RLock())


class _ReportingBar(plain_tqdm):
    """A bar that draws nothing and hands its state to the installed reporter on every refresh."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._send = _reporter
        super().__init__(*args, **kwargs)

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        if self._send is not None:
            total = None if self.total is None else float(self.total)
            try:  # a report that fails (a full disk) must never fail the computation it reports on
                self._send({"desc": str(self.desc or ""), "n": float(self.n), "total": total,
                            "unit": str(self.unit)})
            except Exception:  # noqa: BLE001
                pass
        return True


def progress_bar(progress: bool = True, **kwargs: Any) -> tqdm:
    """A tqdm bar shown only when ``progress`` is true and stderr is a terminal (or sent to the reporter)."""
    kwargs.setdefault("leave", False)
    if progress and _reporter is not None:
        kwargs.update(file=io.StringIO(), mininterval=1.0, disable=False)
        return _ReportingBar(**kwargs)
    return tqdm(disable=None if progress else True, **kwargs)
