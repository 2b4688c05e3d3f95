"""Where the cells of a sweep run: a local process pool, Dask distributed, or submitit (Slurm).

Every executor runs the same function, :func:`run_cell`, on the same cell config,
so every executor gives the same numbers.  ``dask`` and ``submitit`` are
imported only inside their backends.  Retries: an exception inside a cell is
retried in the worker (``retries`` more attempts), then recorded as failed with
its error and traceback; a worker that dies is resubmitted by the driver (or by
Dask itself) up to ``retries`` times, then recorded as failed.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import sys
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from sgdnoise.errors import UsageError

EXECUTORS = ("local", "dask", "submitit", "submitit-local")


def _versions() -> dict[str, Any]:
    from sgdnoise.report.summary import provenance

    info = provenance()
    info.pop("command", None)
    return info


def _limit_threads(threads: int | None) -> None:
    """Numba, PyTorch and BLAS threads per worker (so workers do not oversubscribe the cores).

    PyTorch is not imported for this (1.6 s per worker on the project machine, for cells that
    never use it): ``OMP_NUM_THREADS`` sets the thread count of a later ``import torch``, and
    ``torch.set_num_threads`` the count of one already imported.
    """
    if not threads:
        return
    import numba
    from threadpoolctl import threadpool_limits

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    os.environ["OMP_NUM_THREADS"] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    threadpool_limits(threads)


def run_cell(spec: dict[str, Any], mapping: dict[str, Any], sweep_dir: str) -> dict[str, Any]:
    """Run one cell in this process and write its record (last); return the record.

    Parameters
    ----------
    spec : dict
        ``{"experiment": NAME, "retries": n, "threads": t or None, "progress": bool}``; with
        ``progress`` the cell's progress bars report to its lock file (shown by the driver and
        ``sgdnoise status``) instead of drawing.
    mapping : dict
        The cell's complete config (``config.to_mapping()``).
    sweep_dir : str
        The sweep folder; the cell writes ``cells/<id>/``.
    """
    from sgdnoise.report.folder import ResultFolder
    from sgdnoise.sweeps.grid import cell_id
    from sgdnoise.sweeps.registry import lookup
    from sgdnoise.progress import report_to, use_thread_lock
    from sgdnoise.sweeps.store import cell_dir, drop_lock, report_progress, take_lock, write_record

    if threading.current_thread() is threading.main_thread():  # Ctrl-C is the driver's to handle
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    _limit_threads(spec.get("threads"))
    use_thread_lock()
    entry = lookup(spec["experiment"])
    cid = cell_id(spec["experiment"], mapping)
    folder = cell_dir(sweep_dir, cid)
    lock = take_lock(sweep_dir, cid)
    progress = bool(spec.get("progress"))
    previous = report_to(lambda state: report_progress(sweep_dir, cid, lock, state)) if progress else None
    record: dict[str, Any] = {"id": cid, "experiment": spec["experiment"], "config": mapping}
    started = time.time()
    try:
        for attempt in range(1, int(spec.get("retries", 1)) + 2):
            start = time.perf_counter()
            try:
                config = entry.config_class.from_mapping(mapping)
                shutil.rmtree(folder / "result", ignore_errors=True)  # what a killed attempt left
                result = entry.run(config, progress, folder / "checkpoints")
                entry.save(result, ResultFolder(folder / "result", "result").prepare())
                record.update(status="done", error=None, traceback=None,
                              run_status=getattr(result, "status", "completed"))
                break
            except Exception as exc:  # recorded, then retried
                record.update(status="failed", error=f"{type(exc).__name__}: {exc}",
                              traceback=traceback.format_exc(), run_status=None)
    finally:
        if progress:
            report_to(previous)
    record.update(attempts=attempt, wall_seconds=time.perf_counter() - start, started=started,
                  finished=time.time(), host=socket.gethostname(), pid=os.getpid(), versions=_versions())
    write_record(sweep_dir, record)
    drop_lock(sweep_dir, cid)
    return record


def failed_record(spec: dict[str, Any], mapping: dict[str, Any], error: BaseException,
                  attempts: int) -> dict[str, Any]:
    """The record of a cell whose worker died (written by the driver)."""
    from sgdnoise.sweeps.grid import cell_id

    return {"id": cell_id(spec["experiment"], mapping), "experiment": spec["experiment"], "config": mapping,
            "status": "failed", "error": f"worker lost: {type(error).__name__}: {error}",
            "traceback": "".join(traceback.format_exception(error)), "run_status": None,
            "attempts": attempts, "wall_seconds": None, "started": None, "finished": time.time(),
            "host": socket.gethostname(), "pid": None, "versions": _versions()}


class LocalBackend:
    """A ``concurrent.futures.ProcessPoolExecutor`` (spawned workers); a broken pool is replaced."""

    resubmits = True
    window: int | None = None

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pool = self._new()

    def _new(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.workers, mp_context=get_context("spawn"))

    def submit(self, *args: Any) -> Any:
        try:
            return self.pool.submit(run_cell, *args)
        except BrokenProcessPool:
            self.pool = self._new()
            return self.pool.submit(run_cell, *args)

    def wait(self, handles: list[Any]) -> list[tuple[Any, Any]]:
        done, _ = wait(handles, timeout=1.0, return_when=FIRST_COMPLETED)
        out = []
        for future in done:
            exc = future.exception()
            out.append((future, exc if exc is not None else future.result()))
        if any(isinstance(o, BrokenProcessPool) for _, o in out):
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = self._new()
        return out

    def abort(self, handles: list[Any]) -> None:
        """Stop now: cancel what has not started and end the workers (their cells keep no record)."""
        processes = list(getattr(self.pool, "_processes", {}).values())
        for process in processes:
            process.terminate()
        for process in processes:  # gone before the driver reports the cells as remaining, not running
            process.join(timeout=10)
        # wait=True joins the pool's manager thread: left running, it races Python 3.11's exit hook
        # for the pool's wake-up pipe ("OSError: Bad file descriptor" at exit; CPython gh-105829)
        self.pool.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def local_cluster(workers: int) -> Any:
    """A ``distributed.LocalCluster`` on 127.0.0.1: ``workers`` processes of one thread, tuned for cells.

    Two of Dask's defaults cost a CPU-bound cell time (measured in benchmarks/README.md):
    the nanny starts each worker with ``MALLOC_TRIM_THRESHOLD_=65536``, which also fixes glibc's
    mmap threshold at 128 KiB, so every NumPy temporary above that is a fresh ``mmap`` with its
    pages faulted in again (20 times the page faults, +20 % CPU time per cell); and the worker's
    statistical profiler samples the task thread every 10 ms.  Both are switched off here (the
    thread limits of ``distributed.nanny.pre-spawn-environ`` are kept), and the event loop's
    tick and system monitor (for dashboards) wake every 1 s and 5 s instead of 20 ms and 0.5 s.
    No dashboard: the scheduler's HTTP server (health, metrics) listens on a free port, not on
    8787, so a second sweep or a running Jupyter/Dask session prints no "Port 8787 is already in use".
    """
    import dask
    from distributed import LocalCluster

    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ") or {})
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ,
                          "distributed.worker.profile.enabled": False,
                          "distributed.admin.tick.interval": "1s",
                          "distributed.admin.system-monitor.interval": "5s"}):
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                            dashboard_address=None,
                            scheduler_kwargs={"dashboard": False, "dashboard_address": ":0"})


class DaskBackend:
    """Dask distributed: ``Client(scheduler)`` or a ``LocalCluster`` on 127.0.0.1 for the run."""

    resubmits = False  # Dask retries itself (``retries``)
    window: int | None = None

    def __init__(self, workers: int, scheduler: str | None, retries: int) -> None:
        from distributed import Client

        self.cluster = None
        if scheduler is None:
            self.cluster = local_cluster(workers)
            scheduler = self.cluster.scheduler_address
        try:
            self.client = Client(scheduler)
        except OSError as exc:  # unreachable or not a scheduler: one line, not distributed's traceback
            if self.cluster is not None:
                self.cluster.close()
            raise UsageError(f"--scheduler {scheduler!r} cannot be reached ({exc}); give the address of a "
                             "running Dask scheduler (tcp://HOST:PORT), or leave --scheduler out for a "
                             "LocalCluster", name="--scheduler") from None
        self.retries = retries

    def submit(self, *args: Any) -> Any:
        return self.client.submit(run_cell, *args, pure=False, retries=self.retries)

    def wait(self, handles: list[Any]) -> list[tuple[Any, Any]]:
        from distributed import wait as dask_wait

        try:
            done, _ = dask_wait(handles, timeout=1.0, return_when="FIRST_COMPLETED")
        except TimeoutError:
            return []
        return [(f, f.exception() if f.status == "error" else f.result()) for f in done]

    def abort(self, handles: list[Any]) -> None:
        self.client.cancel(handles)

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


class SubmititBackend:
    """submitit: Slurm (``AutoExecutor``), or its local executor (``submitit-local``, one process a job)."""

    resubmits = True

    def __init__(self, folder: Path, local: bool, workers: int, parameters: dict[str, Any]) -> None:
        import submitit

        self.executor = submitit.AutoExecutor(folder=folder, cluster="local" if local else None)
        self.executor.update_parameters(**{"timeout_min": 60 * 24, **parameters})
        self.window = workers if local else None

    def submit(self, *args: Any) -> Any:
        return self.executor.submit(run_cell, *args)

    def wait(self, handles: list[Any]) -> list[tuple[Any, Any]]:
        for _ in range(5):
            done = [job for job in handles if job.done()]
            if done:
                break
            time.sleep(0.2)
        out = []
        for job in done:
            try:
                out.append((job, job.result()))
            except Exception as exc:  # the job failed or its process died
                out.append((job, exc))
        return out

    def abort(self, handles: list[Any]) -> None:
        for job in handles:
            job.cancel(check=False)

    def close(self) -> None:
        pass


def make_backend(executor: str, workers: int, scheduler: str | None, retries: int,
                 sweep_dir: Path, parameters: dict[str, Any]) -> Any:
    """The backend of ``executor`` (one of :data:`EXECUTORS`)."""
    if executor == "local":
        return LocalBackend(workers)
    if executor == "dask":
        return DaskBackend(workers, scheduler, retries)
    return SubmititBackend(sweep_dir / "submitit", executor == "submitit-local", workers, parameters)
