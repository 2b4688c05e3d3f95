"""The same sweep on the local pool, a real Dask LocalCluster and submitit's local executor: same numbers.

Also: re-running skips done cells; a raising cell is retried, then recorded as failed, the others
finish; collect gives the sweep's dimensions with NaN for failed cells.
"""
from __future__ import annotations

import json
import socket
import warnings

import numpy as np
import pytest

from sgdnoise.sweeps import SweepSpec, collect, run_sweep
from sgdnoise.sweeps.store import read_record

from sweep_helpers import tiny_spec

ARRAYS = ("var_theta", "var_theta_stderr", "var_v", "tau", "hessian_eigenvalues")


def arrays_of(sweep_dir, cell):
    with np.load(sweep_dir / "cells" / cell.id / "result" / "arrays.npz") as a:
        return {k: a[k] for k in ARRAYS}


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("local")
    spec = SweepSpec.read(tiny_spec(tmp))
    state = run_sweep(spec, tmp / "out", "local", workers=2, progress=False)
    return spec, tmp / "out", state


def test_local_pool_runs_every_cell_and_rerun_skips_them(local_sweep):
    spec, out, state = local_sweep
    assert state.counts() == {"done": 4, "running": 0, "failed": 0, "remaining": 0}
    before = {c.id: read_record(out, c.id) for c in spec.cells()}
    assert all(r["attempts"] == 1 and r["versions"]["numpy"] for r in before.values())
    again = run_sweep(spec, out, "local", workers=2, progress=False)
    assert again.counts()["done"] == 4
    assert {c.id: read_record(out, c.id) for c in spec.cells()} == before  # nothing recomputed


@pytest.mark.parametrize("executor", ["dask", "submitit-local"])
def test_other_executors_give_the_same_numbers(local_sweep, executor, tmp_path):
    spec, out, _ = local_sweep
    with socket.socket() as busy, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:  # Dask's default dashboard port taken (a Jupyter session, another sweep): no warning
            busy.bind(("127.0.0.1", 8787))
            busy.listen()
        except OSError:
            pass  # already taken by someone else: the same situation
        state = run_sweep(spec, tmp_path / "out", executor, workers=2, progress=False)
    assert not [w for w in caught if "already in use" in str(w.message)], [str(w.message) for w in caught]
    assert state.counts()["done"] == 4
    for cell in spec.cells():
        mine, reference = arrays_of(tmp_path / "out", cell), arrays_of(out, cell)
        for name in ARRAYS:
            np.testing.assert_array_equal(mine[name], reference[name], err_msg=f"{executor} {name}")


def test_collect_dims(local_sweep, tmp_path):
    spec, out, _ = local_sweep
    ds = collect(out)
    assert dict(ds["var_theta"].sizes) == {"batch_size": 2, "seed": 2, "direction": 6}
    assert list(ds["batch_size"].values) == [2, 4] and list(ds["seed"].values) == [0, 1]
    for name in ("var_theta_stderr", "exact_var_theta", "kuehn_rosenow_tau", "exact_trace_z", "lambda_cross"):
        assert name in ds, name
    cell = spec.cells()[3]
    np.testing.assert_array_equal(ds["var_theta"].values[cell.index], arrays_of(out, cell)["var_theta"])
    from sgdnoise.sweeps.collect import write
    import xarray as xr

    for fmt, name in (("netcdf", "sweep.nc"), ("zarr", "sweep.zarr")):
        path = write(ds, tmp_path / name, fmt)
        with xr.open_dataset(path, engine="h5netcdf" if fmt == "netcdf" else "zarr") as back:
            np.testing.assert_array_equal(back["var_theta"].values, ds["var_theta"].values)
            assert back.attrs["swept"] == ds.attrs["swept"], fmt


def test_a_raising_cell_is_retried_then_failed_and_the_others_finish(tmp_path, toy_path, run_cli):
    path = tmp_path / "toy.toml"
    path.write_text('experiment = "toy_experiment:ENTRY"\nseeds = 1\n[grid]\nmode = ["ok", "raise", "flaky"]\n')
    status_code, out, err = run_cli("sweep", path, "--out", tmp_path / "out", "--workers", "2",
                                    "--retries", "1", "--no-progress")
    assert status_code == 1, err
    spec = SweepSpec.read(path)
    records = {c.point["mode"]: read_record(tmp_path / "out", c.id) for c in spec.cells()}
    assert records["ok"]["status"] == "done" and records["ok"]["attempts"] == 1
    assert records["flaky"]["status"] == "done" and records["flaky"]["attempts"] == 2
    failed = records["raise"]
    assert failed["status"] == "failed" and failed["attempts"] == 2
    assert "toy failure" in failed["error"] and "RuntimeError" in failed["traceback"]
    assert "1 failed" in out and "toy failure" in out
    ds = collect(tmp_path / "out")
    values = ds["measured_value"].sel(seed=0).values
    assert values[0] == 2.0 and np.isnan(values[1]) and values[2] == 2.0
    assert list(ds["cell_status"].sel(seed=0).values) == ["done", "failed", "done"]
    status_code, out, _ = run_cli("status", tmp_path / "out")
    assert status_code == 0 and "2 done, 0 running, 1 failed, 0 remaining" in out
    assert json.loads((tmp_path / "out" / "cells" / failed["id"] / "record.json").read_text())["id"] == failed["id"]
