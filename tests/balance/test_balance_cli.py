"""``sgdnoise balance`` on the command line and from a TOML file."""
from __future__ import annotations

import json

import numpy as np
import pytest

from sgdnoise.cli import main
from sgdnoise.errors import UsageError
from sgdnoise.problems.diagonal import DataMoments
from sgdnoise.stats.distributions import ALPHA


@pytest.mark.parametrize("argv, option", [
    (["--depth", "-1", "--T", "0.1"], "--depth"),
    (["--width", "0", "--T", "0.1"], "--width"),
    (["--T", "0"], "--T"),
    (["--T", "-0.5"], "--T"),
    (["--lr", "0.1", "--batch", "0"], "--batch"),
    (["--T", "0.1", "--lr", "0.1"], "--T"),
    (["--T", "0.1", "--noise-std", "0"], "Delta"),
    (["--T", "0.1", "--weight-decay", "-1"], "--weight-decay"),
    (["--T", "0.1", "--replicas", "1"], "--replicas"),
])
def test_bad_input_is_refused_with_one_line(argv, option, capsys, tmp_path):
    assert main(["balance", *argv, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and option in err, err
    assert not (tmp_path / "x").exists()


def test_data_file_with_delta_zero_is_refused(capsys, tmp_path):
    x = np.linspace(-1, 1, 50)
    np.savez(tmp_path / "d.npz", x=x, y=3 * x)  # y a deterministic multiple of x: Delta = 0
    assert main(["balance", "--T", "0.1", "--data", str(tmp_path / "d.npz"),
                 "--out", str(tmp_path / "x")]) == 2
    assert "Delta" in capsys.readouterr().err
    with pytest.raises(UsageError, match="Delta"):
        DataMoments(1.0, 1.0, 1.0, 1.0, 1.0)


def test_balance_command_writes_its_results(tmp_path):
    out = tmp_path / "run"
    assert main(["balance", "--depth", "1", "--lr", "0.1", "--batch", "2", "--replicas", "200",
                 "--balance-replicas", "50", "--time", "100", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["T"] == pytest.approx(0.05)
    for key in ("T_c", "density", "measured_histogram", "distance", "balance_rate", "config"):
        assert summary[key] is not None, key
    assert summary["config"]["seed"] == 0
    assert {"measured", "predicted"} <= set(summary["balance_rate"])
    for name in ("density.png", "density.pdf", "balance.png", "samples.npz"):
        assert (out / name).is_file(), name
    assert summary["distance"]["alpha"] == ALPHA


TINY = ["--depth", "1", "--lr", "0.1", "--batch", "2", "--replicas", "50", "--balance-replicas", "10",
        "--time", "20", "--records", "4", "--seed", "3"]


def _numbers(out):
    summary = json.loads((out / "summary.json").read_text())
    for key in ("provenance", "runtime_s", "files"):
        summary.pop(key)
    with np.load(out / "samples.npz") as f:
        arrays = {k: f[k] for k in f.files}
    return summary, arrays


def test_toml_run_reproduces_the_command_line_number_for_number(tmp_path):
    from sgdnoise.cli import build_parser
    from sgdnoise.config import config_from_args
    from sgdnoise.experiments.balance import BalanceConfig

    args = build_parser().parse_args(["balance", *TINY, "--out", str(tmp_path / "cli")])
    config = config_from_args(BalanceConfig, args)
    assert main(["balance", *TINY, "--no-progress", "--out", str(tmp_path / "cli")]) == 0
    (tmp_path / "run.toml").write_text(config.to_toml())
    assert main(["run", str(tmp_path / "run.toml"), "--no-progress", "--out", str(tmp_path / "toml")]) == 0
    (cli_summary, cli_arrays), (toml_summary, toml_arrays) = _numbers(tmp_path / "cli"), _numbers(tmp_path / "toml")
    assert cli_summary == toml_summary
    assert cli_arrays.keys() == toml_arrays.keys()
    for key in cli_arrays:
        np.testing.assert_array_equal(cli_arrays[key], toml_arrays[key], err_msg=key)
    # the summary records the config in the form `sgdnoise run` reads
    settings = cli_summary["config"]["settings"]
    assert BalanceConfig.from_mapping(settings) == config
    assert {k: v for k, v in cli_summary["config"].items() if k != "settings"} == settings


@pytest.mark.parametrize("line, named", [
    ("bogus = 1", "'bogus'"),
    ("x_std = -0.5", "x_std"),
    ("replicas = \"many\"", "replicas"),
])
def test_bad_toml_key_or_value_exits_2_naming_it(line, named, tmp_path, capsys):
    (tmp_path / "bad.toml").write_text(f'experiment = "balance"\nT = 0.1\n{line}\n')
    assert main(["run", str(tmp_path / "bad.toml"), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and named in err, err
    assert "--" not in err  # a config file names its keys, not the command-line flags
    assert not (tmp_path / "x").exists()


def test_checks_name_the_python_field():
    from sgdnoise.experiments.balance import BalanceConfig

    for kwargs, name in [({"T": 0.1, "x_std": -1.0}, "x_std"), ({"T": 0.1, "lr": 0.1}, "T"),
                         ({"lr": 0.1, "balance_replicas": 1}, "balance_replicas"),
                         ({"T": 0.1, "tol": 2.0}, "tol")]:
        with pytest.raises(UsageError) as info:
            BalanceConfig(**kwargs)
        assert info.value.name == name and str(info.value).startswith(name), str(info.value)


def test_no_sde_flag_and_defaults(run_cli, tmp_path):
    status, out, err = run_cli("balance", *TINY, "--no-sde", "--no-progress", "--out", tmp_path / "r")
    assert status == 0, err
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["sde"] is None and summary["config"]["sde"] is False
    assert "KS distance" in out and "balance rate measured" in out
