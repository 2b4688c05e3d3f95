"""Experiment configs: checks naming the field, TOML round trips, ``sgdnoise run`` == the command line."""
from __future__ import annotations

import json

import numpy as np
import pytest

from sgdnoise._spec import rng, torch_seed
from sgdnoise.errors import UsageError
from sgdnoise.experiments.linear.config import DemoConfig, LinearConfig

TINY = {"N": 6, "P": 24, "steps": 400, "burn_in": 50, "replicas": 2, "max_lag": 3}


def test_defaults_round_trip_through_toml(tmp_path):
    import tomllib

    for config in (LinearConfig(), DemoConfig(), LinearConfig(sampling="epoch", lr=0.05, N=7)):
        table = tomllib.loads(config.to_toml())
        assert table.pop("experiment") == config.experiment
        assert type(config).from_mapping(table) == config


@pytest.mark.parametrize("changes,field", [
    ({"lr": 0}, "lr"), ({"lr": float("nan")}, "lr"), ({"momentum": 1.0}, "momentum"),
    ({"sampling": "shuffled"}, "sampling"), ({"steps": 0}, "steps"), ({"batch_size": 2.5}, "batch_size"),
    ({"lr": "fast"}, "lr"), ({"replicas": True}, "replicas"), ({"backend": "jax"}, "backend"),
    ({"data": "x.npz", "label_noise": 0.1}, "label_noise"),
])
def test_bad_values_name_the_field(changes, field):
    with pytest.raises(UsageError) as err:
        LinearConfig(**changes)
    assert err.value.name == field and str(err.value).startswith(field)


def test_unknown_key_is_refused_naming_it():
    with pytest.raises(UsageError, match="unknown key 'lrate'"):
        LinearConfig.from_mapping({"lrate": 0.1})


def test_demo_samplers_are_checked():
    with pytest.raises(UsageError, match="samplings"):
        DemoConfig(samplings=("epoch", "epoch"))
    with pytest.raises(UsageError, match="samplings"):
        DemoConfig(samplings=("epoch", "shuffle"))


@pytest.mark.parametrize("command,config", [
    ("linear", LinearConfig(**TINY, sampling="epoch", momentum=0.5, lr=0.3)),
    ("demo", DemoConfig(**TINY, lr=0.5)),
])
def test_run_from_toml_equals_the_command_line(run_cli, tmp_path, command, config):
    flags = ["--N", 6, "--P", 24, "--steps", 400, "--burn-in", 50, "--replicas", 2, "--max-lag", 3,
             "--lr", config.lr, "--momentum", config.momentum]
    if command == "linear":
        flags += ["--sampling", "epoch"]
    assert run_cli(command, *flags, "--no-progress", "--out", tmp_path / "cli")[0] == 0
    summary = json.loads((tmp_path / "cli" / "summary.json").read_text())
    assert summary["config"]["settings"] == config.to_mapping()
    (tmp_path / "c.toml").write_text(config.to_toml())
    assert run_cli("run", tmp_path / "c.toml", "--no-progress", "--out", tmp_path / "toml")[0] == 0
    folders = ["."] if command == "linear" else ["epoch", "with-replacement"]
    for sub in folders:
        a = np.load(tmp_path / "cli" / sub / "arrays.npz")
        b = np.load(tmp_path / "toml" / sub / "arrays.npz")
        assert a.files == b.files
        for name in a.files:
            assert np.array_equal(a[name], b[name]), name


@pytest.mark.parametrize("text,needle", [
    ('experiment = "linear"\nlrate = 1\n', "unknown key 'lrate'"),
    ('experiment = "linear"\nlr = "fast"\n', "key lr must be a number"),
    ('experiment = "linear"\nsampling = "shuffled"\n', "key sampling must be one of"),
    ('experiment = "quadratic"\n', "key 'experiment'"),
    ('lr = 1\n', "key 'experiment'"),
    ('experiment = "linear"\nlr = \n', "not valid TOML"),
])
def test_bad_toml_is_one_line_exit_2(run_cli, tmp_path, text, needle):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    status, _, stderr = run_cli("run", path, "--out", tmp_path / "never")
    assert status == 2 and len(stderr.strip().splitlines()) == 1 and needle in stderr, stderr
    assert not (tmp_path / "never").exists()


def test_named_streams_are_stable_and_independent():
    a = rng(3, "batches").integers(0, 2**31, 5)
    assert np.array_equal(a, rng(3, "batches").integers(0, 2**31, 5))
    assert not np.array_equal(a, rng(3, "noise").integers(0, 2**31, 5))
    assert not np.array_equal(a, rng(4, "batches").integers(0, 2**31, 5))
    assert torch_seed(0, "init") == torch_seed(0, "init") != torch_seed(0, "data")
    assert 0 <= torch_seed(0, "init") < 2**63
