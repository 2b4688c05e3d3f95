"""``sgdnoise ivfr`` on the command line, from a TOML file, and its refusals."""
from __future__ import annotations

import json

import numpy as np
import pytest

from sgdnoise.cli import main
from sgdnoise.commands.ivfr import EXPERIMENT
from sgdnoise.config import config_from_args
from sgdnoise.cli import build_parser

TINY = ["--N", "4", "--P", "30", "--outputs", "2", "--hidden", "2", "--steps", "1200", "--burn-in", "200",
        "--replicas", "2", "--snapshot-every", "10", "--seed", "3", "--no-progress"]


@pytest.mark.parametrize("argv, flag", [
    (["--hidden", "0"], "--hidden"),
    (["--kappa", "1"], "--kappa"),
    (["--kappa", "0.5"], "--kappa"),
    (["--steps", "100", "--snapshot-every", "50"], "--snapshot-every"),
    (["--model", "cnn"], "--model"),
    (["--lr", "50"], "--lr"),
])
def test_bad_input_is_refused_with_one_line(argv, flag, capsys, tmp_path):
    assert main(["ivfr", *argv, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and flag in err, err
    assert not (tmp_path / "x").exists()


def summary_numbers(path) -> dict:
    summary = json.loads((path / "summary.json").read_text())
    return {"layers": summary["layers"], "theory": summary["theory"], "status": summary["status"]}


@pytest.mark.slow
def test_toml_run_reproduces_the_command_line_number_for_number(tmp_path, capsys):
    for model in ("two-layer", "linear"):
        cli_out, toml_out = tmp_path / f"cli-{model}", tmp_path / f"toml-{model}"
        argv = ["ivfr", "--model", model, *TINY, "--out", str(cli_out)]
        assert main(argv) == 0
        config = config_from_args(EXPERIMENT.config_class, build_parser().parse_args(argv))
        (tmp_path / "c.toml").write_text(config.to_toml())
        assert main(["run", str(tmp_path / "c.toml"), "--out", str(toml_out), "--no-progress"]) == 0
        assert summary_numbers(cli_out) == summary_numbers(toml_out)
        summary = json.loads((cli_out / "summary.json").read_text())
        assert summary["config"]["settings"]["model"] == model
        for name, layer in summary["layers"].items():
            for key in ("pca_variances", "pca_variances_stderr", "flatness", "curvature", "psi", "psi_ci",
                        "gamma", "gamma_ci", "drift_mode"):
                assert key in layer, (name, key)
            assert {"pca_variances", "curvature", "gamma"} <= set(summary["theory"][name])
        with np.load(cli_out / "arrays.npz") as arrays, np.load(toml_out / "arrays.npz") as again:
            for key in arrays:
                np.testing.assert_array_equal(arrays[key], again[key])
        for name in ("ivfr.png", "profiles.png"):
            assert (cli_out / name).is_file()


def test_bad_toml_key_and_value_exit_2_naming_them(tmp_path, capsys):
    (tmp_path / "a.toml").write_text('experiment = "ivfr"\nhiden = 3\n')
    assert main(["run", str(tmp_path / "a.toml"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "hiden" in err
    (tmp_path / "b.toml").write_text('experiment = "ivfr"\nkappa = 0.9\n')
    assert main(["run", str(tmp_path / "b.toml"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "kappa" in err


def test_reproductions_are_listed(capsys):
    assert main(["reproduce", "--list"]) == 0
    out = capsys.readouterr().out
    for name in ("ivfr-single-layer", "ivfr-two-layer", "ivfr-mlp-digits"):
        assert name in out


def test_mlp_end_to_end_on_digits(tmp_path, capsys):
    """The MLP path with a tiny network (64-6-6-10): trains, keeps the window, analyses W2, writes everything."""
    out = tmp_path / "mlp"
    argv = ["ivfr", "--model", "mlp", "--width", "0.1", "--steps", "300", "--burn-in", "100", "--replicas", "2",
            "--snapshot-every", "10", "--seed", "1", "--no-progress", "--out", str(out)]
    assert main(argv) == 0
    assert "W2: psi" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["theory"] == {}
    assert summary["config"]["problem"]["shape"] == [64, 6, 6, 10]
    assert summary["config"]["window"] == {"snapshots": 30, "every": 10, "steps": 300, "burn_in": 100}
    layer = summary["layers"]["W2"]
    assert len(layer["pca_variances"]) == 29 and np.all(np.diff(layer["pca_variances"]) <= 0)
    assert layer["psi"] is not None and len(layer["psi_ci"]) == 2 and layer["points_fitted"] > 0
    with np.load(out / "arrays.npz") as arrays:
        assert arrays["W2_variances"].shape == arrays["W2_flatness"].shape == (2, 29)
    for name in ("ivfr.png", "profiles.png"):
        assert (out / name).is_file()
    assert not (out / "checkpoints").exists()
