"""The Anti-PGD reproductions at tiny sizes: they run, write their files, and stop cleanly."""
from __future__ import annotations

import json

import numpy as np

from sgdnoise.commands.reproduce import registry
from sgdnoise.experiments.antipgd import LenetSettings, ValleySettings, run_lenet, run_valley
from sgdnoise.interrupts import graceful_stop, request_stop
from sgdnoise.report.antipgd import save_lenet, save_valley
from sgdnoise.report.folder import ResultFolder


def test_both_are_registered():
    assert {"kuehn-rosenow-antipgd-valley", "kuehn-rosenow-antipgd-lenet"} <= set(registry())


def test_valley_writes_figure_and_summary(tmp_path):
    result = run_valley(ValleySettings(replicas=20, steps=100, record_every=20, sigma=0.2))
    assert result.status == "completed"
    save_valley(result, ResultFolder(tmp_path / "valley").prepare())
    summary = json.loads((tmp_path / "valley" / "summary.json").read_text())
    assert (tmp_path / "valley" / "valley.png").is_file()
    assert set(summary["final"]) == {"gd", "pgd", "anti-pgd"}
    end = summary["anti_pgd_end_point"]
    assert end["predicted_leading_order_2_d_sigma2"] == 2 * 10 * 0.2**2
    assert summary["gd"]["gradient_flow_prediction"] == 9.0


def test_lenet_writes_figure_and_summary(tmp_path):
    settings = LenetSettings(seeds=2, pretrain_steps=3, steps=3, trace_samples=4, train_examples=64, batch=16,
                             methods=("gd", "anti-pgd", "sgd-epoch"))
    result = run_lenet(settings)
    assert result.status == "completed"
    assert all(len(runs) == 2 for runs in result.runs.values())
    save_lenet(result, ResultFolder(tmp_path / "lenet").prepare())
    summary = json.loads((tmp_path / "lenet" / "summary.json").read_text())
    assert (tmp_path / "lenet" / "lenet.png").is_file()
    assert np.isfinite(summary["mean_over_seeds"]["anti-pgd"]["trace"]["mean"])
    assert summary["runs"]["gd"][0]["trace_stderr"] > 0


def test_a_stop_request_keeps_what_was_measured(tmp_path):
    with graceful_stop():
        request_stop()
        result = run_valley(ValleySettings(replicas=4, steps=100, record_every=10))
    assert result.status.startswith("gd: interrupted after 0 of 100 steps")
    assert all(len(p["step"]) == 1 for p in result.paths.values())
    save_valley(result, ResultFolder(tmp_path / "stopped").prepare())
    summary = json.loads((tmp_path / "stopped" / "summary.json").read_text())
    assert summary["status"] == result.status
