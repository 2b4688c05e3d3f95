"""Running a sweep: check every cell, skip done ones, run the rest on an executor (docs/sweeps.md)."""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

from sgdnoise.errors import UsageError
from sgdnoise.interrupts import stop_requested
from sgdnoise.progress import progress_bar
from sgdnoise.sweeps.executors import EXECUTORS, failed_record, make_backend
from sgdnoise.sweeps.grid import Cell, SweepSpec
from sgdnoise.sweeps.store import (SweepStatus, describe_progress, drop_lock, is_running, prepare, read_lock,
                                   read_record, status, write_record)


def _check(executor: str, workers: int | None, retries: int) -> None:
    if executor not in EXECUTORS:
        raise UsageError(f"--executor must be one of {', '.join(EXECUTORS)}; got {executor!r}", name="--executor")
    if workers is not None and workers < 1:
        raise UsageError(f"--workers must be at least 1; got {workers}", name="--workers")
    if retries < 0:
        raise UsageError(f"--retries must be at least 0; got {retries}", name="--retries")


def run_sweep(spec: SweepSpec, sweep_dir: str | Path, executor: str = "local", workers: int | None = None,
              scheduler: str | None = None, retries: int = 1, progress: bool = True) -> SweepStatus:
    """Run every cell of ``spec`` not yet done into ``sweep_dir``; return the final status.

    All cells are built and checked first (:meth:`SweepSpec.cells`); cells whose
    ``record.json`` says done are skipped; the others run on ``executor``.  On Ctrl-C or SIGTERM
    (:func:`sgdnoise.interrupts.stop_requested`) no new cell starts and the running ones are stopped
    without a record, so the next run picks them up.
    """
    _check(executor, workers, retries)
    cells = spec.cells()
    sweep_dir = prepare(sweep_dir, spec)
    todo = [c for c in cells if (read_record(sweep_dir, c.id) or {}).get("status") != "done"]
    workers = workers or min(len(todo), os.cpu_count() or 1) or 1
    counts = Counter(done=len(cells) - len(todo))
    bar = progress_bar(progress, total=len(cells), initial=counts["done"], desc="sweep", unit="cell")
    job = {"experiment": spec.experiment, "retries": retries,
           "threads": max(1, (os.cpu_count() or 1) // workers), "progress": not bar.disable}
    lines = CellLines(not bar.disable, sweep_dir, min(workers, len(todo)))
    if todo:
        backend = make_backend(executor, workers, scheduler, retries, sweep_dir, spec.submitit)
        try:
            _drive(backend, todo, job, str(sweep_dir), retries, counts, bar, lines)
        finally:
            backend.close()
    lines.close()
    bar.close()
    return status(sweep_dir, cells)


class CellLines:
    """Status lines under the sweep bar, one per running cell (at most ``lines``).

    Each shows the cell's swept values and what its worker last reported (the description and
    step count of its current progress bar, from the cell's lock file; docs/sweeps.md).
    """

    def __init__(self, show: bool, sweep_dir: Path, lines: int) -> None:
        self.sweep_dir = sweep_dir
        self.bars = [progress_bar(True, total=0, position=i + 1, bar_format="{desc}", desc="")
                     for i in range(lines)] if show else []

    def update(self, cells: list[Cell]) -> None:
        """Show the running cells among ``cells`` (those with a lock and no record yet)."""
        if not self.bars:
            return
        texts = []
        for cell in cells:
            lock = read_lock(self.sweep_dir, cell.id) if is_running(self.sweep_dir, cell.id) else None
            if lock is not None and len(texts) < len(self.bars):
                where = ", ".join(f"{k}={v}" for k, v in cell.point.items()) or "base"
                texts.append(f"  {cell.id[:8]} {where}: {describe_progress(lock)}")
        for i, bar in enumerate(self.bars):
            bar.set_description_str(texts[i] if i < len(texts) else "", refresh=True)

    def close(self) -> None:
        for bar in self.bars:
            bar.close()


def _drive(backend: Any, todo: list[Cell], job: dict[str, Any], sweep_dir: str, retries: int,
           counts: Counter, bar: Any, lines: CellLines) -> None:
    """Submit the cells (at most ``backend.window`` at once), collect outcomes, resubmit lost workers."""
    queue = list(reversed(todo))
    pending: dict[Any, Cell] = {}
    lost: Counter = Counter()
    while (queue or pending) and not stop_requested():
        while queue and (backend.window is None or len(pending) < backend.window):
            cell = queue.pop()
            pending[backend.submit(job, cell.mapping, sweep_dir)] = cell
        running = sum(is_running(sweep_dir, cell.id) for cell in pending.values())
        bar.set_postfix(done=counts["done"], failed=counts["failed"], running=running)
        lines.update(list(pending.values()))
        for handle, outcome in backend.wait(list(pending)):
            cell = pending.pop(handle)
            if stop_requested():  # its worker may have been stopped: no record, the cell stays remaining
                continue
            if isinstance(outcome, BaseException):
                lost[cell.id] += 1
                if backend.resubmits and lost[cell.id] <= retries:
                    queue.append(cell)
                    continue
                write_record(sweep_dir, failed_record(job, cell.mapping, outcome, lost[cell.id]))
                drop_lock(sweep_dir, cell.id)
                outcome = {"status": "failed"}
            counts[outcome["status"]] += 1
            bar.update(1)
    if pending:  # stopped (Ctrl-C, SIGTERM): the cells still running keep no record and run next time
        backend.abort(list(pending))
    bar.set_postfix(done=counts["done"], failed=counts["failed"], running=0)
