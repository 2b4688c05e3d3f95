"""Wall time of 16 equal sweep cells: 2 local workers and a Dask LocalCluster of 2 workers vs one after another.

The cells are ``linear`` runs (teacher-student, N = 20, P = 100, S = 5, 8 replicas, epoch sampling)
differing only in their seed; each worker, and the serial loop, uses one thread.  All three are
measured in this run, after a warm-up (numba compilation excluded).  What is timed:

- ``serial_s``: the 16 cells through :func:`run_cell` in this (warm) process, one after another;
- ``local_pool_s``: ``run_sweep(executor="local", workers=2)``: starting 2 spawned workers (their
  imports), the 16 cells, every result folder and record, shutting the pool down;
- ``dask_s``: what ``sgdnoise sweep --executor dask --workers 2`` does: starting the LocalCluster of
  2 worker processes (:func:`local_cluster`, ``dask_startup_s``), ``run_sweep`` on it (connecting a
  client, the workers' imports, the 16 cells, result folders and records: ``dask_run_s``) and
  closing the cluster (``dask_close_s``).  ``ratio_dask`` includes all three;
  ``ratio_dask_running_cluster`` is ``dask_run_s`` alone (a cluster already up, as with
  ``--scheduler``).

Ideal ratio: 0.5.  Prints one JSON line.
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from sgdnoise.sweeps.executors import local_cluster, run_cell
from sgdnoise.sweeps.grid import SweepSpec
from sgdnoise.sweeps.runner import run_sweep

CELLS = 16
BASE = {"N": 20, "P": 100, "batch_size": 5, "replicas": 8, "sampling": "epoch", "steps": 60_000,
        "burn_in": 2_000, "max_lag": 10}


def spec(steps: int = BASE["steps"], cells: int = CELLS) -> SweepSpec:
    return SweepSpec.from_mapping({"experiment": "linear", "seeds": cells, "base": {**BASE, "steps": steps}})


def serial(s: SweepSpec, out: Path) -> float:
    """Every cell in this process, one after another (one thread), through the same cell function."""
    from sgdnoise.sweeps.store import prepare

    prepare(out, s)
    start = time.perf_counter()
    for cell in s.cells():
        run_cell({"experiment": s.experiment, "retries": 0, "threads": 1}, cell.mapping, str(out))
    return time.perf_counter() - start


def on(executor: str, s: SweepSpec, out: Path, scheduler: str | None = None) -> float:
    start = time.perf_counter()
    state = run_sweep(s, out, executor, workers=2, scheduler=scheduler, retries=0, progress=False)
    assert state.counts()["done"] == len(s.cells()), state.counts()
    return time.perf_counter() - start


def on_dask(s: SweepSpec, out: Path) -> dict[str, float]:
    """Start the LocalCluster the dask executor starts, run the sweep on it, close it; each timed."""
    start = time.perf_counter()
    cluster = local_cluster(2)
    startup = time.perf_counter() - start
    try:
        running = on("dask", s, out, cluster.scheduler_address)
    finally:
        closing = time.perf_counter()
        cluster.close()
    return {"startup": startup, "run": running, "close": time.perf_counter() - closing,
            "total": time.perf_counter() - start}


def main(steps: int = BASE["steps"]) -> None:
    s = spec(steps)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        serial(spec(200, 1), tmp / "warm-up")
        one_by_one = serial(s, tmp / "serial")
        pool = on("local", s, tmp / "local")
        dask = on_dask(s, tmp / "dask")
    ratio_local, ratio_dask = pool / one_by_one, dask["total"] / one_by_one
    print(json.dumps({"benchmark": "sweep", "cells": CELLS, "cell": {**BASE, "steps": steps}, "workers": 2,
                      "serial_s": round(one_by_one, 2), "local_pool_s": round(pool, 2),
                      "dask_s": round(dask["total"], 2), "dask_startup_s": round(dask["startup"], 2),
                      "dask_run_s": round(dask["run"], 2), "dask_close_s": round(dask["close"], 2),
                      "ratio_local": round(ratio_local, 3), "ratio_dask": round(ratio_dask, 3),
                      "ratio_dask_running_cluster": round(dask["run"] / one_by_one, 3),
                      "targets_met": ratio_local <= 0.6 and ratio_dask <= 0.7}))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else BASE["steps"])
