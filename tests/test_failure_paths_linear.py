"""Failure paths of ``sgdnoise linear``, ``demo`` and ``reproduce`` (issue 9): each once failed.

Output paths that are files or hold foreign files, stale files of an earlier run,
pickled or contradictory data, diverging demos, unsettled measurements.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

TINY = ["--N", 6, "--P", 24, "--steps", 400, "--burn-in", 50, "--replicas", 2, "--max-lag", 3,
        "--no-progress"]


def one_line_exit_2(status, stderr, needle):
    lines = stderr.strip().splitlines()
    assert status == 2 and len(lines) == 1 and needle in lines[0] and "Traceback" not in stderr, stderr


@pytest.mark.parametrize("command", [["linear", *TINY], ["demo", *TINY], ["reproduce", "gross-fig3"]])
def test_out_naming_a_file_is_refused(run_cli, tmp_path, command):
    target = tmp_path / "afile"
    target.write_text("keep me")
    status, _, stderr = run_cli(*command, "--out", target)
    one_line_exit_2(status, stderr, "--out must be a folder")
    assert target.read_text() == "keep me"


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
@pytest.mark.parametrize("command", [["linear", *TINY], ["balance", "--T", 0.05, "--no-progress"],
                                     ["reproduce", "ziyin-balance"]])
def test_out_that_cannot_be_created_is_refused_before_any_work(run_cli, command):
    # /proc admits no new folder even for root, whom os.access says yes to: it failed after the
    # simulation (linear) or at the first checkpoint (balance), with a FileNotFoundError traceback
    status, _, stderr = run_cli(*command, "--out", "/proc/sgdnoise-no-such/run")
    one_line_exit_2(status, stderr, "--out '/proc/sgdnoise-no-such/run' cannot be written")


def test_out_holding_foreign_files_is_refused(run_cli, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    status, _, stderr = run_cli("linear", *TINY, "--out", out)
    one_line_exit_2(status, stderr, "holds files that no earlier sgdnoise run wrote")
    assert (out / "thesis.tex").read_text() == "precious"


def test_a_second_run_clears_the_first_and_lists_exactly_its_files(run_cli, tmp_path):
    out = tmp_path / "run"
    assert run_cli("linear", *TINY, "--sampling", "epoch", "--out", out)[0] == 0
    assert (out / "noise_autocorrelation.png").exists()
    assert run_cli("linear", *TINY, "--sampling", "fixed-order", "--out", out)[0] == 0
    summary = json.loads((out / "summary.json").read_text())
    assert not (out / "noise_autocorrelation.png").exists()
    assert set(summary["files"]) == {p.name for p in out.iterdir()}
    assert "fluctuations.pdf" in summary["files"]


def test_refused_run_leaves_the_earlier_results_alone(run_cli, tmp_path):
    out = tmp_path / "run"
    assert run_cli("linear", *TINY, "--out", out)[0] == 0
    before = sorted(p.name for p in out.iterdir())
    status, _, stderr = run_cli("linear", *TINY, "--lr", -1, "--out", out)
    one_line_exit_2(status, stderr, "--lr")
    assert sorted(p.name for p in out.iterdir()) == before


def test_pickled_data_is_refused_without_numpy_advice(run_cli, tmp_path):
    path = tmp_path / "pickled.npz"
    np.savez(path, x=np.array([{"a": 1}] * 5, dtype=object), y=np.zeros(5))
    status, _, stderr = run_cli("linear", "--data", path, "--out", tmp_path / "o")
    one_line_exit_2(status, stderr, "pickled Python objects")
    assert "allow_pickle" not in stderr


@pytest.mark.parametrize("flag,value", [("--label-noise", 0.1), ("--outputs", 3)])
def test_teacher_options_contradicting_data_are_refused(run_cli, tmp_path, flag, value):
    path = tmp_path / "d.npz"
    rng = np.random.default_rng(0)
    np.savez(path, x=rng.normal(size=(20, 3)), y=rng.normal(size=(20, 2)))
    status, _, stderr = run_cli("linear", "--data", path, flag, value, "--out", tmp_path / "o")
    one_line_exit_2(status, stderr, flag)
    assert "data" in stderr


def test_both_npz_spellings_are_read(run_cli, tmp_path):
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(30, 4)), rng.normal(size=30)
    for name, arrays in (("lower", {"x": x, "y": y}), ("upper", {"X": x, "y": y})):
        np.savez(tmp_path / f"{name}.npz", **arrays)
    results = []
    for name in ("lower", "upper"):
        out = tmp_path / name
        assert run_cli("linear", "--data", tmp_path / f"{name}.npz", "--steps", 300, "--burn-in", 10,
                       "--replicas", 2, "--no-progress", "--out", out)[0] == 0
        results.append(json.loads((out / "summary.json").read_text())["measured"]["var_theta"])
    assert results[0] == results[1]


def test_diverging_demo_says_so_exits_1_and_draws_no_empty_panels(run_cli, tmp_path):
    out = tmp_path / "demo"
    status, stdout, stderr = run_cli("demo", "--lr", 20, "--N", 20, "--P", 40, "--steps", 3000, "--burn-in", 50,
                                     "--replicas", 2, "--max-lag", 3, "--no-progress", "--out", out)
    summary = json.loads((out / "summary.json").read_text())
    assert status == 1
    assert "diverged" in stderr and "diverged" in stdout
    assert "diverged" in summary["status"]
    assert not (out / "fluctuations.png").exists()
    assert set(summary["figures_not_drawn"]["fluctuations.png"]) == {"epoch", "with-replacement"}


def test_unsettled_measurement_is_flagged_and_explained(run_cli, tmp_path):
    out = tmp_path / "run"
    status, stdout, _ = run_cli("linear", "--N", 30, "--P", 60, "--steps", 200, "--burn-in", 5,
                                "--replicas", 2, "--no-progress", "--out", out)
    summary = json.loads((out / "summary.json").read_text())
    arrays = np.load(out / "arrays.npz")
    assert status == 0
    assert len(summary["measured"]["equilibrated"]) == 30 and not all(summary["measured"]["equilibrated"])
    assert arrays["equilibrated"].dtype == bool
    assert "directions equilibrated" in stdout and "--burn-in" in stdout and "--steps" in stdout


def test_reproduce_negative_seed_is_refused_before_any_work(run_cli, tmp_path):
    # was a ValueError traceback from numpy's SeedSequence, after the folder check and the theory
    status, _, stderr = run_cli("reproduce", "ziyin-tail", "--seed", -1, "--out", tmp_path / "o")
    one_line_exit_2(status, stderr, "--seed must be an integer >= 0; got -1")
    assert not (tmp_path / "o").exists()
