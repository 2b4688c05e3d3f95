"""Built-in models, local data sets and the ``sgdnoise net`` command (tiny settings)."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from sgdnoise.errors import UsageError
from sgdnoise.problems.datasets import load_dataset
from sgdnoise.problems.networks import build_model

TINY = ["--model", "mlp", "--width", "0.25", "--train-examples", "200", "--batch", "20",
        "--pretrain-epochs", "2", "--burn-in-epochs", "1", "--epochs", "4", "--k", "4",
        "--noise-epochs", "3", "--slq-vectors", "1", "--slq-steps", "4", "--trace-samples", "2",
        "--accuracy-seeds", "2", "--checkpoint-every", "15", "--no-progress"]


@pytest.mark.parametrize(("name", "shape", "n_params"), [
    ("lenet", (3, 32, 32), 62006),      # LeCun et al.'s LeNet-5 on CIFAR-10
    ("resnet20", (3, 32, 32), 269722),  # He et al.'s ResNet-20 (0.27M)
    ("lenet", (1, 8, 8), None),
    ("mlp", (64,), None),
])
def test_models_build_and_count_parameters(name, shape, n_params):
    model = build_model(name, shape, 10)
    assert model(torch.zeros(2, *shape)).shape == (2, 10)
    if n_params is not None:
        assert sum(p.numel() for p in model.parameters()) == n_params
    wide = build_model(name, shape, 10, width=2.0)
    assert sum(p.numel() for p in wide.parameters()) > sum(p.numel() for p in model.parameters())


def test_bad_models_are_refused():
    with pytest.raises(UsageError, match="--model must be one of mlp, lenet, resnet20; got 'vgg'"):
        build_model("vgg", (1, 8, 8), 10)
    with pytest.raises(UsageError, match=r"--model lenet needs square images .* shape \(64,\)"):
        build_model("lenet", (64,), 10)
    with pytest.raises(UsageError, match="--width must be positive"):
        build_model("mlp", (64,), 10, width=0)


def write_cifar_miniature(folder, per_batch: int = 4) -> None:
    """The CIFAR-10 python format: pickled dicts with b"data" (n, 3072) uint8 and b"labels"."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                 b"labels": list(rng.integers(0, 10, per_batch)), b"batch_label": name.encode()}
        with open(folder / name, "wb") as fh:
            pickle.dump(batch, fh)


def test_cifar10_folder_is_read(tmp_path):
    write_cifar_miniature(tmp_path / "cifar-10-batches-py")
    data = load_dataset("cifar10", tmp_path)  # the parent folder works too
    assert data.x_train.shape == (20, 3, 32, 32) and data.x_test.shape == (4, 3, 32, 32)
    assert data.n_classes <= 10 and data.y_train.dtype == torch.int64
    assert abs(float(data.x_train.mean())) < 1e-5  # standardised per channel
    with pytest.raises(UsageError, match="no CIFAR-10 batches in .*missing data_batch_1.*cifar-10-python.tar.gz"):
        load_dataset("cifar10", tmp_path / "elsewhere")
    with pytest.raises(UsageError, match="--data cifar10 needs --data-dir"):
        load_dataset("cifar10")


def test_npz_and_digits(tmp_path):
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "a.npz", x=rng.standard_normal((50, 6)), y=rng.integers(0, 3, 50))
    data = load_dataset(str(tmp_path / "a.npz"), test_fraction=0.2)
    assert data.x_train.shape == (40, 6) and data.x_test.shape == (10, 6)
    np.savez(tmp_path / "b.npz", inputs=np.zeros((5, 2)))
    with pytest.raises(UsageError, match="must hold arrays x and y"):
        load_dataset(str(tmp_path / "b.npz"))
    with pytest.raises(UsageError, match="--data must be one of digits, cifar10 or a path ending in .npz"):
        load_dataset("mnist")
    digits = load_dataset("digits", train_examples=100)
    assert digits.x_train.shape == (100, 1, 8, 8) and digits.n_classes == 10


def test_net_command_writes_the_summary_and_resumes(run_cli, tmp_path):
    out = tmp_path / "run"
    status, stdout, stderr = run_cli("net", *TINY, "--out", out)
    assert status == 0, stderr
    summary = json.loads((out / "summary.json").read_text())
    k = 4
    assert len(summary["hessian_eigenvalues"]) == k
    assert summary["lambda_cross"] > 0 and summary["tau_sgd"] > 0
    assert summary["config"]["seed"] == 0 and summary["config"]["sampling"] == ["epoch", "with-replacement"]
    for sampling in ("epoch", "with-replacement"):
        assert len(summary["noise_variance"][sampling]) == k
        for key in ("var_theta", "var_v", "tau"):
            assert len(summary["measured"][key][sampling]) == k
            assert len(summary["theory"]["kuehn_rosenow"][key][sampling]) == k
        assert len(summary["accuracy"][sampling]["test"]) == 2
    assert summary["status"] == "completed"
    for name in ("fluctuations", "noise_autocorrelation", "spectrum", "training"):
        assert (out / f"{name}.png").is_file()
    arrays = np.load(out / "arrays.npz")
    assert np.array_equal(arrays["epoch_var_theta"], summary["measured"]["var_theta"]["epoch"])
    # rerunning resumes from the checkpoints: the same numbers
    status, _, _ = run_cli("net", *TINY, "--accuracy-seeds", "0", "--out", out)
    assert status == 0
    again = json.loads((out / "summary.json").read_text())
    assert again["measured"]["var_theta"] == summary["measured"]["var_theta"]
    # other settings do not resume from these checkpoints
    status, _, stderr = run_cli("net", *TINY, "--k", "3", "--out", out)
    assert status == 2 and "holds checkpoints of a run with other settings (--k)" in stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--model", "foo"], "--model must be one of mlp, lenet, resnet20; got 'foo'"),
    (["--sampling", "epoch,sometimes"], "--sampling must be a comma-separated list"),
    (["--k", "100000"], "--k must be between 1 and the number of parameters"),
    (["--model", "lenet", "--data", "FLAT"], "--model lenet needs square images"),
    (["--momentum", "1"], "--momentum must be in [0, 1)"),
    (["--batch", "0"], "--batch must be between 1 and half the training examples"),
    (["--device", "cuda:7"], "--device cuda:7: CUDA is not available"),
    (["--data", "cifar10", "--data-dir", "NOWHERE"], "no CIFAR-10 batches in NOWHERE"),
])
def test_net_command_refuses_bad_input_before_training(run_cli, tmp_path, args, message):
    flat = tmp_path / "flat.npz"
    np.savez(flat, x=np.zeros((300, 5)), y=np.arange(300) % 2)
    args = [str(flat) if a == "FLAT" else a for a in args]
    if torch.cuda.is_available() and "cuda:7" in args:
        pytest.skip("a CUDA device is present")
    status, _, stderr = run_cli("net", *TINY, *args, "--out", tmp_path / "out")
    assert status == 2
    assert message in stderr and len(stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
