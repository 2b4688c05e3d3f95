"""Failure paths of ``sgdnoise net`` (issue 9): each test failed before the fix.

Output paths that are files, corrupt or non-finite data, both ``.npz`` spellings, messages
that name only the options given, divergence, unsettled windows, defaults in ``--help``.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from sgdnoise.cli import build_parser
from test_failure_paths_linear import one_line_exit_2

TINY = ["--model", "mlp", "--width", "0.25", "--train-examples", "200", "--batch", "20",
        "--pretrain-epochs", "2", "--burn-in-epochs", "1", "--epochs", "4", "--k", "4",
        "--noise-epochs", "3", "--slq-vectors", "1", "--slq-steps", "4", "--trace-samples", "2",
        "--accuracy-seeds", "0", "--checkpoint-every", "15", "--no-progress"]


def test_out_naming_a_file_is_refused(run_cli, tmp_path):
    target = tmp_path / "afile"
    target.write_text("keep me")
    status, _, stderr = run_cli("net", *TINY, "--out", target)
    one_line_exit_2(status, stderr, "--out must be a folder")
    assert target.read_text() == "keep me"


@pytest.mark.parametrize("content,needle", [
    (b"not a zip at all", "cannot read"),
    (b"PK\x03\x04truncated", "cannot read"),
    (b"", "is empty"),
])
def test_corrupt_npz_is_one_line(run_cli, tmp_path, content, needle):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    status, _, stderr = run_cli("net", *TINY, "--data", path, "--out", tmp_path / "o")
    one_line_exit_2(status, stderr, needle)
    assert stderr.startswith("sgdnoise net: error: --data") and not (tmp_path / "o").exists()


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_data_is_refused_before_training(run_cli, tmp_path, bad):
    x = np.random.default_rng(0).normal(size=(300, 5))
    x[7, 2] = bad
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(300) % 2)
    status, stdout, stderr = run_cli("net", *TINY, "--data", tmp_path / "d.npz", "--out", tmp_path / "o")
    one_line_exit_2(status, stderr, "NaN or inf")
    assert "diverge" not in stdout + stderr and not (tmp_path / "o").exists()


def test_pickled_npz_is_refused_without_numpy_advice(run_cli, tmp_path):
    np.savez(tmp_path / "p.npz", x=np.array([{"a": 1}] * 300, dtype=object), y=np.arange(300) % 2)
    status, _, stderr = run_cli("net", *TINY, "--data", tmp_path / "p.npz", "--out", tmp_path / "o")
    one_line_exit_2(status, stderr, "pickled Python objects")
    assert "allow_pickle" not in stderr


def test_upper_case_npz_keys_are_read(run_cli, tmp_path):
    rng = np.random.default_rng(2)
    np.savez(tmp_path / "upper.npz", X=rng.normal(size=(300, 5)), Y=np.arange(300) % 2)
    status, _, stderr = run_cli("net", *TINY, "--data", tmp_path / "upper.npz", "--out", tmp_path / "o")
    assert status in (0, 1) and "error" not in stderr, stderr
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["n_train"] == 200


def test_noise_epochs_message_names_only_the_option_given(run_cli, tmp_path):
    status, _, stderr = run_cli("net", *TINY, "--noise-epochs", 1, "--out", tmp_path / "o")
    one_line_exit_2(status, stderr, "--noise-epochs")
    assert "max-lag" not in stderr and "max_lag" not in stderr


def test_diverging_net_says_so_exits_1_and_draws_no_empty_panels(run_cli, tmp_path):
    out = tmp_path / "o"
    status, stdout, stderr = run_cli("net", *TINY, "--pretrain-lr", "1e6", "--out", out)
    summary = json.loads((out / "summary.json").read_text())
    assert status == 1
    assert "diverged" in summary["status"] and "diverged" in stdout and "diverged" in stderr
    assert "training.png" in summary["figures_not_drawn"] and not (out / "training.png").exists()
    assert "fluctuations.png" in summary["figures_not_drawn"] and not (out / "fluctuations.png").exists()
    assert {n.rstrip("/") for n in summary["files"]} == {p.name for p in out.iterdir()}


def test_too_short_a_window_is_flagged_per_direction(run_cli, tmp_path):
    out = tmp_path / "o"
    status, stdout, _ = run_cli("net", *TINY, "--out", out)
    summary = json.loads((out / "summary.json").read_text())
    arrays = np.load(out / "arrays.npz")
    assert status == 0
    for sampling in ("epoch", "with-replacement"):
        stationary = summary["measured"]["stationary"][sampling]
        assert len(stationary) == 4 and not any(stationary)  # 40 recorded steps, tau of hundreds
        assert summary["measured"]["stationary_count"][sampling] == 0
        assert not any(summary["measured"]["equilibrated"][sampling])
        assert len(summary["measured"]["trend"][sampling]) == 4
        assert summary["analysis"]["not_equilibrated"][sampling] == [0, 1, 2, 3]
        assert arrays[f"{sampling.replace('-', '_')}_stationary"].dtype == bool
        assert f"{sampling}: 4 of 4 directions not equilibrated" in stdout
    assert "--epochs" in stdout and "20 relaxation times" in stdout


@pytest.mark.parametrize("command", ["net", "balance"])
def test_every_option_shows_its_default_in_help(command):
    sub = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    parser = sub.choices[command]
    formatter = parser._get_formatter()
    missing = [a.option_strings for a in parser._actions
               if a.dest != "help" and not any(w in formatter._expand_help(a) for w in ("default", "None:"))]
    assert not missing
