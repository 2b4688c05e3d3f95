"""The ``net`` settings: field checks naming the option, data checks before training, TOML round trips."""
from __future__ import annotations

import json

import numpy as np
import pytest

from sgdnoise.config import read_toml
from sgdnoise.errors import UsageError
from sgdnoise.experiments.net import NetConfig
from sgdnoise.experiments.net import config as net_config

SMALL = ["--model", "mlp", "--width", "0.25", "--train-examples", "200", "--batch", "20",
         "--pretrain-epochs", "1", "--burn-in-epochs", "1", "--epochs", "2", "--k", "3",
         "--noise-epochs", "3", "--slq-vectors", "0", "--trace-samples", "0", "--accuracy-seeds", "0",
         "--no-progress"]
#: Keys that differ between two runs of the same settings (time, provenance, where files went).
UNSTABLE = {"wall_seconds", "timing", "provenance", "files"}


def test_choices_match_the_modules_that_define_them():
    from sgdnoise.measure.hessian import HVP_METHODS
    from sgdnoise.measure.lanczos import SOLVERS
    from sgdnoise.problems.datasets import DATASETS
    from sgdnoise.problems.networks import MODELS

    assert (net_config.HVP_METHODS, net_config.SOLVERS, net_config.MODELS, net_config.DATASETS) == (
        HVP_METHODS, SOLVERS, MODELS, DATASETS)


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"noise_epochs": 1}, "noise_epochs", "noise_epochs must be an integer >= 3: the noise series of noise_epochs x M steps"),
    ({"noise_epochs": 0, "max_lag": 4}, "noise_epochs", "noise_epochs must be an integer >= 1"),
    ({"trace_samples": 1}, "trace_samples", "trace_samples must be 0 or at least 2; got 1"),
    ({"sampling": ("epoch", "epoch")}, "sampling", "sampling must be a comma-separated list of distinct"),
    ({"momentum": 1.0}, "momentum", "momentum must be in [0, 1); got 1.0"),
    ({"hvp": "finite"}, "hvp", "hvp must be one of double-backward, forward-over-reverse"),
    ({"tol": 0.0}, "tol", "tol must be a finite number > 0 and < 1"),
    ({"data": "mnist"}, "data", "data must be one of digits, cifar10 or a path ending in .npz"),
    ({"seed": -1}, "seed", "seed must be an integer >= 0"),
])
def test_field_checks_name_the_field(changes, field, message):
    with pytest.raises(UsageError) as info:
        NetConfig(**changes)
    assert info.value.name == field and str(info.value).startswith(message)


@pytest.mark.parametrize(("args", "message"), [
    (["--noise-epochs", "1"], "--noise-epochs must be an integer >= 3: the noise series of noise_epochs x M steps"),
    (["--max-lag", "30"], "--max-lag must be between 1 and the noise series length noise_epochs * M - 1 (29)"),
    (["--epochs", "1"], "--epochs must be at least 2 so that the recorded late phase has 20 steps"),
    (["--batch", "101"], "--batch must be between 1 and half the training examples (100); got 101"),
    (["--device", "nonsense"], "--device must name a torch device such as cpu or cuda"),
])
def test_command_line_names_the_option_given(run_cli, tmp_path, args, message):
    status, _, stderr = run_cli("net", *SMALL, *args, "--out", tmp_path / "out")
    assert status == 2, stderr
    assert message in stderr and len(stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def comparable(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k not in UNSTABLE}


def test_sgdnoise_run_reproduces_the_command_line_number_for_number(run_cli, tmp_path):
    status, _, stderr = run_cli("net", *SMALL, "--out", tmp_path / "cli")
    assert status == 0, stderr
    summary = json.loads((tmp_path / "cli" / "summary.json").read_text())
    config = NetConfig.from_mapping(summary["config"]["settings"])
    assert {k: v for k, v in summary["config"].items() if k != "settings"} == summary["config"]["settings"]
    (tmp_path / "net.toml").write_text(config.to_toml())
    assert read_toml(tmp_path / "net.toml") == {"experiment": "net", **{
        k: v for k, v in config.to_mapping().items() if v is not None}}
    status, _, stderr = run_cli("run", tmp_path / "net.toml", "--out", tmp_path / "toml", "--no-progress")
    assert status == 0, stderr
    again = json.loads((tmp_path / "toml" / "summary.json").read_text())
    assert comparable(again) == comparable(summary)
    assert set(summary["files"]) == set(again["files"])
    first, second = np.load(tmp_path / "cli" / "arrays.npz"), np.load(tmp_path / "toml" / "arrays.npz")
    assert sorted(first.files) == sorted(second.files)
    for name in first.files:
        assert np.array_equal(first[name], second[name]), name


@pytest.mark.parametrize(("line", "message"), [
    ("batch_size = 20", "unknown key 'batch_size' for experiment 'net'"),
    ("k = 'three'", "key k must be an integer; got 'three'"),
    ("momentum = 1.5", "key momentum must be in [0, 1); got 1.5"),
    ("sampling = ['epoch', 'sometimes']", "key sampling must be a comma-separated list"),
])
def test_bad_toml_key_or_value_exits_2_naming_it(run_cli, tmp_path, line, message):
    (tmp_path / "bad.toml").write_text(f"experiment = 'net'\nmodel = 'mlp'\n{line}\n")
    status, _, stderr = run_cli("run", tmp_path / "bad.toml", "--out", tmp_path / "out")
    assert status == 2
    assert message in stderr and len(stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_default_threads_respect_a_sweep_workers_share(monkeypatch):
    # A sweep worker sets OMP_NUM_THREADS to its share of the cores; a large model's default
    # thread count must stay within it (and within the cores and MAX_DEFAULT_THREADS without it).
    from sgdnoise.experiments.net.session import MAX_DEFAULT_THREADS, SMALL_MODEL, default_threads
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert default_threads(SMALL_MODEL, cores=None) == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert default_threads(SMALL_MODEL, cores=8) == min(8, MAX_DEFAULT_THREADS)
    assert default_threads(SMALL_MODEL - 1, cores=8) == 1
