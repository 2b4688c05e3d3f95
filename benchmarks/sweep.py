"""Wall time of 16 equal sweep cells: 2 local workers and a Dask LocalCluster of 2 workers vs one after another.

The cells are ``linear`` runs (teacher-student, N = 20, P = 100, S = 5, 8 replicas, epoch sampling)
differing only in their seed; each worker, and the serial loop, uses one thread.  All three are
measured in this run, after a warm-up (numba compilation excluded).  The ratios include everything a
sweep pays: starting the workers, writing every cell's result folder and record.  Ideal: 0.5.
Prints one JSON line.
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from sgdnoise.sweeps.executors import run_cell
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


def on(executor: str, s: SweepSpec, out: Path) -> float:
    start = time.perf_counter()
    state = run_sweep(s, out, executor, workers=2, retries=0, progress=False)
    assert state.counts()["done"] == len(s.cells()), state.counts()
    return time.perf_counter() - start


def main(steps: int = BASE["steps"]) -> None:
    s = spec(steps)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        serial(spec(200, 1), tmp / "warm-up")
        one_by_one = serial(s, tmp / "serial")
        pool = on("local", s, tmp / "local")
        dask = on("dask", s, tmp / "dask")
    print(json.dumps({"benchmark": "sweep", "cells": CELLS, "cell": {**BASE, "steps": steps}, "workers": 2,
                      "serial_s": round(one_by_one, 2), "local_pool_s": round(pool, 2), "dask_s": round(dask, 2),
                      "ratio_local": round(pool / one_by_one, 3), "ratio_dask": round(dask / one_by_one, 3),
                      "targets_met": pool / one_by_one <= 0.6 and dask / one_by_one <= 0.7}))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else BASE["steps"])
