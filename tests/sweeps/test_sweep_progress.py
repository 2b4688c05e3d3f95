"""Per-cell progress: bars report to the cell's lock file; the net extractor and showcase on a fake sweep."""
from __future__ import annotations

import json

import numpy as np

from sgdnoise import progress
from sgdnoise.progress import progress_bar, report_to
from sgdnoise.sweeps import SweepSpec
from sgdnoise.sweeps.store import describe_progress, prepare, read_lock, read_record, write_record

from sweep_helpers import tiny_spec


def test_bars_report_to_the_reporter_and_a_failing_report_is_ignored():
    got = []
    previous = report_to(got.append)
    try:
        with progress_bar(True, total=3, desc="SGD epoch", unit="step") as bar:
            bar.update(3)
        assert got[-1] == {"desc": "SGD epoch", "n": 3.0, "total": 3.0, "unit": "step"}
        report_to(lambda state: 1 / 0)
        for _ in progress_bar(True, iterable=range(2)):
            pass
        assert not got[1:] or got[-1]["n"] == 3.0
        assert progress_bar(False, total=2).disable  # no progress asked: nothing reported
    finally:
        report_to(previous)
    assert progress._reporter is None


def test_describe_progress():
    assert describe_progress(None) == "starting"
    lock = {"progress": {"desc": "SGD epoch", "n": 1500.0, "total": 60000.0, "unit": "step"}}
    assert describe_progress(lock) == "SGD epoch 1500/60000 step"


def test_a_cell_reports_its_progress_in_its_lock(tmp_path, monkeypatch):
    from sgdnoise.sweeps import executors, store

    spec = SweepSpec.read(tiny_spec(tmp_path, seeds=1, batches="[2]"))
    out = prepare(tmp_path / "out", spec)
    cell = spec.cells()[0]
    seen = []
    original = store.report_progress

    def spy(sweep_dir, cid, lock, state):
        original(sweep_dir, cid, lock, state)
        seen.append(read_lock(sweep_dir, cid))

    monkeypatch.setattr(store, "report_progress", spy)
    record = executors.run_cell({"experiment": "linear", "retries": 0, "threads": None, "progress": True},
                                cell.mapping, str(out))
    assert record["status"] == "done" and read_lock(out, cell.id) is None
    assert seen and all(s["pid"] == record["pid"] for s in seen)
    assert any(s["progress"]["desc"].startswith("SGD") for s in seen), seen
    assert progress._reporter is None


def fake_net_sweep(tmp_path, monkeypatch):
    """A net sweep folder of the showcase's spec whose cells hold hand-written summaries (no training)."""
    from sgdnoise.sweeps import showcases

    monkeypatch.setenv("SGDNOISE_SWEEP_CACHE", str(tmp_path / "cache"))
    lam = np.array([8.0, 3.0, 1.0, 0.3])
    captured = {}

    def fake_run(name, spec, seed, show):
        folder = prepare(showcases.sweep_folder(name, seed), spec)
        for cell in spec.cells():
            S, lr, beta = cell.mapping["batch"], cell.mapping["lr"], cell.mapping["momentum"]
            theory = {"epoch": lr * lam / 10, "with-replacement": lr * np.ones(4) / 10}
            summary = {"lambda_cross": 3 * (1 - beta) * S / (lr * 1437), "tau_sgd": 100.0,
                       "batches_per_epoch": 1437 // S, "n_train": 1437, "n_parameters": 100,
                       "hessian_eigenvalues": lam.tolist(),
                       "measured": {q: {s: (v * (2 if q == "tau" else 1)).tolist() for s, v in theory.items()}
                                    for q in ("var_theta", "var_v", "tau")},
                       "theory": {"kuehn_rosenow": {q: {s: v.tolist() for s, v in theory.items()}
                                                   for q in ("var_theta", "var_v", "tau")}}}
            for q in ("var_theta", "var_v", "tau"):
                summary["measured"][f"{q}_stderr"] = {s: (0.1 * v).tolist() for s, v in theory.items()}
            result = folder / "cells" / cell.id / "result"
            result.mkdir(parents=True)
            (result / "summary.json").write_text(json.dumps(summary))
            write_record(folder, {"id": cell.id, "status": "done"})
        captured["folder"] = folder
        return showcases.SweepShowcase(name, spec, showcases.collect(folder).load())

    monkeypatch.setattr(showcases, "_run", fake_run)
    return showcases.kuehn_rosenow_net(0, progress=False), captured["folder"]


def test_net_extractor_and_showcase_numbers(tmp_path, monkeypatch):
    from sgdnoise.report.folder import ResultFolder
    from sgdnoise.sweeps.showcase_figures import save_kuehn_rosenow_net

    result, folder = fake_net_sweep(tmp_path, monkeypatch)
    ds = result.dataset
    assert dict(ds["var_theta"].sizes) == {"batch": 7, "sampling": 2, "direction": 4}
    assert list(ds["sampling"].values) == ["epoch", "with-replacement"]
    assert read_record(folder, ds["cell_id"].values[0])["status"] == "done"
    centre = result.numbers["settings"][0]
    assert centre["below"]["directions"] == 2 and centre["above"]["directions"] == 2  # lambda_cross = 2.67
    assert abs(centre["above"]["measured_over_theory"]["epoch"] - 1) < 1e-12
    assert abs(centre["below"]["theory_epoch_over_with_replacement"] - np.sqrt(0.3)) < 1e-12
    out = ResultFolder(tmp_path / "figure", "x").prepare()
    save_kuehn_rosenow_net(result, out)
    assert (tmp_path / "figure" / "kuehn_rosenow_net.png").is_file()
    assert json.loads((tmp_path / "figure" / "summary.json").read_text())["status"] == "completed"


def test_collect_writes_zarr(tmp_path, monkeypatch):
    import pytest

    pytest.importorskip("zarr")
    import xarray as xr

    from sgdnoise.sweeps.collect import write

    result, _ = fake_net_sweep(tmp_path, monkeypatch)
    path = write(result.dataset, tmp_path / "sweep.zarr", "zarr")
    back = xr.open_zarr(path)
    np.testing.assert_array_equal(back["var_theta"].values, result.dataset["var_theta"].values)
    assert list(back["cell_status"].values) == ["done"] * 7
