"""Failure paths of ``sgdnoise balance`` (issue 9): each test failed before the fix.

Output paths that are files, corrupt, pickled or malformed data files (``.npz`` and tables),
both ``.npz`` spellings, divergence.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from test_failure_paths_linear import one_line_exit_2

TINY = ["--depth", "1", "--lr", "0.1", "--batch", "2", "--replicas", "50", "--balance-replicas", "10",
        "--time", "20", "--records", "4", "--no-progress"]


def test_out_naming_a_file_is_refused(run_cli, tmp_path):
    target = tmp_path / "afile"
    target.write_text("keep me")
    status, _, stderr = run_cli("balance", *TINY, "--out", target)
    one_line_exit_2(status, stderr, "--out must be a folder")
    assert target.read_text() == "keep me"


@pytest.mark.parametrize("name,content,needle", [
    ("bad.npz", b"not a zip", "cannot read"),
    ("trunc.npz", b"PK\x03\x04truncated", "cannot read"),
    ("empty.npz", b"", "is empty"),
    ("binary.txt", b"\x89PNG\x00\xff\xfe\x00", "cannot read"),
    ("empty.csv", b"", "holds no numbers"),
    ("three.csv", b"1,2,3\n4,5,6\n", "two columns"),
    ("words.txt", b"a b\nc d\n", "cannot read"),
    ("nan.csv", b"1,2\nnan,3\n4,5\n", "finite"),
])
def test_bad_data_files_are_one_line(run_cli, tmp_path, name, content, needle):
    path = tmp_path / name
    path.write_bytes(content)
    status, _, stderr = run_cli("balance", *TINY, "--data", path, "--out", tmp_path / "o")
    one_line_exit_2(status, stderr, needle)
    assert "--data" in stderr and not (tmp_path / "o").exists()


def test_pickled_and_non_finite_npz_are_refused(run_cli, tmp_path):
    np.savez(tmp_path / "p.npz", x=np.array([{"a": 1}] * 20, dtype=object), y=np.zeros(20))
    status, _, stderr = run_cli("balance", *TINY, "--data", tmp_path / "p.npz", "--out", tmp_path / "o")
    one_line_exit_2(status, stderr, "pickled Python objects")
    assert "allow_pickle" not in stderr
    np.savez(tmp_path / "n.npz", x=np.r_[np.inf, np.ones(19)], y=np.arange(20.0))
    status, _, stderr = run_cli("balance", *TINY, "--data", tmp_path / "n.npz", "--out", tmp_path / "o")
    one_line_exit_2(status, stderr, "NaN or inf")


def test_both_npz_spellings_give_the_same_run(run_cli, tmp_path):
    rng = np.random.default_rng(4)
    x = rng.normal(size=200)
    y = 0.5 * x + rng.normal(size=200)
    np.savez(tmp_path / "lower.npz", x=x, y=y)
    np.savez(tmp_path / "upper.npz", X=x, Y=y)
    found = []
    for name in ("lower", "upper"):
        status, _, stderr = run_cli("balance", *TINY, "--data", tmp_path / f"{name}.npz", "--out", tmp_path / name)
        assert status == 0, stderr
        found.append(json.loads((tmp_path / name / "summary.json").read_text())["moments"])
    assert found[0] == found[1]


def test_diverging_balance_says_so_exits_1_and_draws_no_empty_panels(run_cli, tmp_path):
    out = tmp_path / "o"
    status, stdout, stderr = run_cli("balance", "--depth", "0", "--lr", "30", "--x-std", "1", "--batch", "1",
                                     "--replicas", "50", "--time", "9000", "--records", "4", "--no-sde",
                                     "--no-progress", "--out", out)
    summary = json.loads((out / "summary.json").read_text())
    assert status == 1
    assert summary["status"].startswith("diverged: 50 of 50 replicas of SGD")
    assert "diverged" in stdout and "diverged" in stderr and "--lr" in stdout and "--T" not in stdout
    assert "density.png" in summary["figures_not_drawn"] and not (out / "density.png").exists()
    assert set(summary["files"]) == {p.name for p in out.iterdir()}


def test_records_that_cannot_fit_in_memory_are_refused_before_any_work(run_cli, tmp_path):
    # was a numpy MemoryError traceback once the imbalance runs (after the density runs) allocated them
    out = tmp_path / "run"
    status, _, stderr = run_cli("balance", "--T", 0.05, "--records", 10**9, "--replicas", 200, "--out", out)
    lines = stderr.strip().splitlines()
    assert status == 2 and len(lines) == 1 and lines[0].startswith("sgdnoise balance: error: --records = "), stderr
    assert "GiB" in lines[0] and not out.exists()
