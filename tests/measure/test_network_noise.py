"""Per-example gradient covariance of a network against dense per-example gradients.

Reference: one ``torch.autograd.grad`` per example (float64), Sigma_1 formed densely;
deterministic checks hold to float64 round-off.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from sgdnoise.sampling import Sampler
from sgdnoise.measure.gradient_noise import noise_autocorrelation
from sgdnoise.measure.network_noise import NoiseCovarianceOperator, PerExampleGradients, projected_covariance
from sgdnoise.theory import noise_kernel

ROUND_OFF = 1e-10


@pytest.fixture(scope="module")
def problem():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(8, 3)).double()
    g = torch.Generator().manual_seed(1)
    X, y = torch.randn(29, 1, 4, 4, generator=g, dtype=torch.float64), torch.randint(0, 3, (29,), generator=g)
    loss_fn = nn.CrossEntropyLoss()
    model.eval()
    params = list(model.parameters())
    G = torch.stack([torch.cat([t.reshape(-1) for t in torch.autograd.grad(loss_fn(model(X[n:n + 1]), y[n:n + 1]),
                                                                          params)]) for n in range(len(X))])
    centred = G - G.mean(0)
    model.train()
    return model, loss_fn, X, y, G, centred.T @ centred / len(X)


def test_per_example_gradients_match_a_loop(problem):
    model, loss_fn, X, y, G, _ = problem
    chunks = list(PerExampleGradients(model, loss_fn, (X, y), chunk_size=8).chunks())
    assert [c.shape[0] for c in chunks] == [8, 8, 8, 5]
    assert torch.linalg.norm(torch.cat(chunks) - G) <= ROUND_OFF * torch.linalg.norm(G)
    assert model.training


def test_covariance_operator_matches_dense(problem):
    model, loss_fn, X, y, _, Sigma = problem
    U = torch.randn(Sigma.shape[0], 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    for data in ((X, y), DataLoader(TensorDataset(X, y), batch_size=6)):
        op = NoiseCovarianceOperator(model, loss_fn, data, chunk_size=5)
        assert torch.linalg.norm(op.matmat(U) - Sigma @ U) <= ROUND_OFF * torch.linalg.norm(Sigma @ U)
    u = np.random.default_rng(3).standard_normal(Sigma.shape[0])
    assert np.linalg.norm(op.to_scipy() @ u - Sigma.numpy() @ u) <= ROUND_OFF * np.linalg.norm(Sigma.numpy() @ u)


def test_projected_covariance_matches_dense(problem):
    model, loss_fn, X, y, G, Sigma = problem
    V = torch.linalg.qr(torch.randn(Sigma.shape[0], 5, dtype=torch.float64,
                                    generator=torch.Generator().manual_seed(4)))[0]
    projections = PerExampleGradients(model, loss_fn, (X, y), chunk_size=4).project(V)
    assert torch.linalg.norm(projections - G @ V) <= ROUND_OFF * torch.linalg.norm(G @ V)
    dense = V.T @ Sigma @ V
    assert torch.linalg.norm(projected_covariance(projections) - dense) <= ROUND_OFF * torch.linalg.norm(dense)


def test_projected_noise_autocorrelation_follows_the_epoch_kernel(problem):
    """Batch noise of epoch sampling at fixed weights, projected: Kuehn & Rosenow eq. 2 within 5 s.e."""
    model, loss_fn, X, y, _, Sigma = problem
    V = torch.linalg.eigh(Sigma)[1][:, -3:]
    q = PerExampleGradients(model, loss_fn, (X, y)).project(V).numpy()
    P, S = len(X), 3
    M = P // S
    sampler = Sampler("epoch", P, S, replicas=64, rng=np.random.default_rng(5))
    acf = noise_autocorrelation(q, sampler, 50 * M, max_lag=M + 2)
    c0 = acf.trace.value[0]
    kappa = noise_kernel("epoch", M, M + 2)
    z = (acf.trace.value[1:] / c0 - kappa[1:]) / (acf.trace.stderr[1:] / c0)
    assert np.max(np.abs(z)) < 5
