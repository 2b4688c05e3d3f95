"""FluctuationRecorder (own training loop) and predict_fluctuations.

The recorder is held against ProjectedFluctuations on the same trajectory (identical numbers),
its open-ended mode against the statistics of the stored trajectory with the block boundaries it
documents, and its refusals against the argument they name.  predict_fluctuations is held
against kuehn_rosenow called by hand.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from sgdnoise.errors import UsageError
from sgdnoise.measure.recorder import FluctuationRecorder, FluctuationResult, ProjectedFluctuations
from sgdnoise.problems.networks import flat_parameters
from sgdnoise.theory import batch_noise_factor, kuehn_rosenow, predict_fluctuations


def setup(seed: int = 0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3)).double()
    g = torch.Generator().manual_seed(seed + 1)
    X = torch.randn(32, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (32,), generator=g)
    d = sum(p.numel() for p in model.parameters())
    V = torch.linalg.qr(torch.randn(d, 4, generator=g, dtype=torch.float64))[0]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.8)
    return model, (X, y), V, optimizer, g


def train(model, data, optimizer, g, steps, on_step):
    """Steps of batches of 4 drawn with replacement by ``g``; ``on_step()`` after each."""
    X, y = data
    for _ in range(steps):
        batch = torch.randint(0, len(X), (4,), generator=g)
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(X[batch]), y[batch]).backward()
        optimizer.step()
        on_step()


@pytest.mark.parametrize("steps, n_blocks", [(200, 20), (203, 7)])
def test_recorder_equals_projected_fluctuations_on_the_same_trajectory(steps, n_blocks):
    model, data, V, optimizer, g = setup()
    reference = ProjectedFluctuations(V, flat_parameters(model), steps, n_blocks)
    recorder = FluctuationRecorder(model, V, steps=steps, n_blocks=n_blocks)

    def on_step():
        recorder.record()
        reference.update(flat_parameters(model))

    train(model, data, optimizer, g, steps, on_step)
    result, expected = recorder.result(), reference.result()
    assert isinstance(result, FluctuationResult)
    for name in ("var_theta", "var_v", "tau", "mean_theta"):
        np.testing.assert_array_equal(getattr(result, name).value, expected[name].value)
        np.testing.assert_array_equal(getattr(result, name).stderr, expected[name].stderr)
    assert result.steps == expected["steps"] == steps
    assert result.block_length == math.ceil(steps / n_blocks)
    assert result.n_blocks == math.ceil(steps / result.block_length)
    with pytest.raises(UsageError, match="steps") as info:
        recorder.record()  # one more than announced
    assert info.value.name == "steps"


def stored_trajectory_statistics(p: np.ndarray, block_length: int) -> dict[str, np.ndarray]:
    """var_theta, its batch-means stderr and the drift ratio from stored projections ``p`` (T, k)."""
    blocks = [p[i: i + block_length] for i in range(0, len(p), block_length)]
    grand = p.mean(axis=0)
    block_var = np.stack([((b - grand) ** 2).mean(axis=0) for b in blocks])
    half = len(blocks) // 2
    first, second = np.concatenate(blocks[:half]), np.concatenate(blocks[-half:])
    return {"var_theta": block_var.mean(axis=0),
            "stderr": block_var.std(axis=0, ddof=1) / np.sqrt(len(blocks)),
            "drift_ratio": np.abs(second.mean(axis=0) - first.mean(axis=0)) / np.sqrt(block_var.mean(axis=0)),
            "mean_theta": np.stack([b.mean(axis=0) for b in blocks]).mean(axis=0),
            "n_blocks": len(blocks)}


@pytest.mark.parametrize("steps, block_length, n_blocks", [(7, 1, 7), (8, 1, 8), (9, 2, 5), (37, 8, 5),
                                                           (64, 8, 8), (65, 16, 5)])
def test_open_ended_recorder_doubles_its_blocks(steps, block_length, n_blocks):
    """n_blocks = 4: blocks of 1 step until 8 are full, then merged in pairs, doubling as needed."""
    model, data, V, optimizer, g = setup(seed=3)
    start = flat_parameters(model)
    recorder = FluctuationRecorder(model, V, n_blocks=4)
    thetas = []

    def on_step():
        recorder.record()
        thetas.append(flat_parameters(model))

    train(model, data, optimizer, g, steps, on_step)
    result = recorder.result()
    assert (result.steps, result.block_length, result.n_blocks) == (steps, block_length, n_blocks)
    p = ((torch.stack(thetas) - start) @ V).numpy()
    expected = stored_trajectory_statistics(p, block_length)
    assert expected["n_blocks"] == n_blocks
    np.testing.assert_allclose(result.var_theta.value, expected["var_theta"], rtol=1e-10)
    np.testing.assert_allclose(result.var_theta.stderr, expected["stderr"], rtol=1e-10)
    np.testing.assert_allclose(result.drift_ratio, expected["drift_ratio"], rtol=1e-10)
    np.testing.assert_allclose(result.mean_theta.value, expected["mean_theta"], rtol=1e-10)
    if steps % block_length == 0:  # equal blocks: the batch means are the window's own statistics
        np.testing.assert_allclose(result.var_theta.value, p.var(axis=0), rtol=1e-10)
        np.testing.assert_allclose(result.mean_theta.value, p.mean(axis=0), rtol=1e-10)


def test_drift_ratio_separates_a_drift_from_stationary_noise():
    rng = np.random.default_rng(0)
    T = 4000
    V = torch.eye(2, dtype=torch.float64)
    theta = nn.Parameter(torch.zeros(2, dtype=torch.float64))
    model = nn.Module()
    model.theta = theta
    recorder = FluctuationRecorder(model, V)
    for k in range(T):
        with torch.no_grad():  # direction 0: white noise; direction 1: steady drift plus the same noise
            theta.copy_(torch.as_tensor([rng.normal(), 1e-2 * k + rng.normal()]))
        recorder.record()
    ratio = recorder.result().drift_ratio
    assert ratio[0] < 0.1
    assert 1.5 < ratio[1] < 1.8  # sqrt(3) for a pure drift, slightly less with the noise


def test_state_dict_resumes_to_the_same_numbers():
    model, data, V, optimizer, g = setup(seed=5)
    whole = FluctuationRecorder(model, V, n_blocks=4)
    train(model, data, optimizer, g, 30, whole.record)
    model2, data2, _, optimizer2, g2 = setup(seed=5)
    first = FluctuationRecorder(model2, V, n_blocks=4)
    train(model2, data2, optimizer2, g2, 13, first.record)
    second = FluctuationRecorder(model2, V, n_blocks=4)  # e.g. a new process: created at other weights
    second.load_state_dict(first.state_dict())
    train(model2, data2, optimizer2, g2, 17, second.record)
    a, b = whole.result(), second.result()
    for name in ("var_theta", "var_v", "tau", "mean_theta"):
        np.testing.assert_array_equal(getattr(a, name).value, getattr(b, name).value)
        np.testing.assert_array_equal(getattr(a, name).stderr, getattr(b, name).stderr)
    assert a.block_length == b.block_length == 4  # 8 blocks of 1, then 2 (at 13 steps), then 4


def test_eigenpairs_and_numpy_eigenvectors_are_accepted():
    from sgdnoise.measure.lanczos import Eigenpairs

    model, _, V, _, _ = setup()
    pairs = Eigenpairs(torch.ones(V.shape[1]), V, torch.zeros(V.shape[1]), 0)
    for eigenvectors in (pairs, V.numpy()):
        recorder = FluctuationRecorder(model, eigenvectors)
        assert torch.equal(recorder._state.basis, V)


def bad(match: str, name: str, call) -> None:
    with pytest.raises(UsageError, match=match) as info:
        call()
    assert info.value.name == name


def test_bad_input_is_refused_naming_the_argument():
    model, data, V, optimizer, g = setup()
    d = V.shape[0]
    bad(r"eigenvectors must have shape \(d, k\) with d = 43", "eigenvectors",
        lambda: FluctuationRecorder(model, V[:-1]))
    bad("eigenvectors must have shape", "eigenvectors", lambda: FluctuationRecorder(model, V[:, 0]))
    bad("eigenvectors must have shape", "eigenvectors",
        lambda: FluctuationRecorder(model, torch.zeros(d, 0, dtype=torch.float64)))
    bad("orthonormal", "eigenvectors", lambda: FluctuationRecorder(model, 2 * V))
    bad("eigenvectors must be", "eigenvectors", lambda: FluctuationRecorder(model, "V"))
    bad("model must be a torch.nn.Module", "model", lambda: FluctuationRecorder(V, V))
    bad("no", "model", lambda: FluctuationRecorder(nn.ReLU(), V))
    bad("steps must be", "steps", lambda: FluctuationRecorder(model, V, steps=1))
    bad("steps must be", "steps", lambda: FluctuationRecorder(model, V, steps=10.5))
    bad("n_blocks must be", "n_blocks", lambda: FluctuationRecorder(model, V, n_blocks=1))
    bad("n_blocks must be <= steps", "n_blocks", lambda: FluctuationRecorder(model, V, steps=5, n_blocks=6))

    recorder = FluctuationRecorder(model, V)
    bad("not changed since the recorder was created", "record", recorder.record)
    bad("at least 2 recorded steps", "record", recorder.result)
    train(model, data, optimizer, g, 1, recorder.record)
    bad("at least 2 recorded steps", "record", recorder.result)
    bad("not changed since the last record", "record", recorder.record)  # called twice
    model[0] = nn.Linear(4, 6).double()
    bad("model has 48 trainable parameters now, 43", "model", recorder.record)


def test_projected_fluctuations_keeps_its_interface():
    V = torch.eye(3, 2, dtype=torch.float64)
    bad("n_blocks must be between 2 and", "n_blocks", lambda: ProjectedFluctuations(V, torch.zeros(3), 10, 11))
    bad("n_blocks must be at least 2", "n_blocks", lambda: ProjectedFluctuations(V, torch.zeros(3), None, 1))
    state = ProjectedFluctuations(V, torch.zeros(3), 10, 5).state_dict()
    del state["block_length"]  # a checkpoint written before open-ended blocks existed
    resumed = ProjectedFluctuations(V, torch.zeros(3), 10, 5)
    resumed.load_state_dict(state)
    assert resumed.block_length == 2


@pytest.mark.parametrize("sampling, M", [("epoch", 12), ("with-replacement", 1), ("random-batch", 1)])
def test_predict_fluctuations_is_kuehn_rosenow_with_the_batch_noise(sampling, M):
    lam = np.array([3.0, 0.7, 0.05, 0.0])
    sigma2_1 = np.array([1.0, 2.0, 0.5, 0.3])
    P, S, lr, beta = 100, 8, 0.2, 0.6
    got = predict_fluctuations(lam, sigma2_1, lr, beta, batch_size=S, n_examples=P, sampling=sampling)
    if M == 1:  # var_theta is infinite at lambda = 0 without epochs
        lam, sigma2_1 = lam[:-1], sigma2_1[:-1]
        got = predict_fluctuations(torch.as_tensor(lam), torch.as_tensor(sigma2_1), lr, beta,
                                   batch_size=S, n_examples=P, sampling=sampling)
    expected = kuehn_rosenow(lam, batch_noise_factor(sampling, P, S) * sigma2_1, lr, beta, M)
    for name in ("var_theta", "var_v", "tau"):
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name))


def test_predict_fluctuations_refuses_bad_input():
    args = dict(eigenvalues=[1.0], noise_variances=[1.0], lr=0.1, momentum=0.0)
    bad("sampling must be one of with-replacement, random-batch, epoch", "sampling",
        lambda: predict_fluctuations(**args, batch_size=2, n_examples=10, sampling="fixed-order"))
    bad("batch_size must be", "batch_size",
        lambda: predict_fluctuations(**args, batch_size=11, n_examples=10, sampling="epoch"))
    bad("n_examples must be", "n_examples",
        lambda: predict_fluctuations(**args, batch_size=1, n_examples=0, sampling="epoch"))
