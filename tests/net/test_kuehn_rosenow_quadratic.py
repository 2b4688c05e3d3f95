"""The network pipeline on a quadratic model written as an nn.Module, against Kuehn & Rosenow.

Per-example loss l_n = 1/2 (theta - a_n)^T H (theta - a_n): the Hessian is H, the noise is
additive (independent of theta), so the closed form of docs/theory.md §3d is exact for the time
average of every direction, for epoch sampling as for sampling with replacement.  The whole
chain -- hessian_eigenpairs, projected per-example covariance, train() with a Sampler,
ProjectedFluctuations -- is held against sgdnoise.theory.kuehn_rosenow within 5 standard
errors (batch means over 20 blocks).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import sgdnoise
from sgdnoise.sampling import Sampler
from sgdnoise.dynamics.training import train
from sgdnoise.measure.recorder import ProjectedFluctuations
from sgdnoise.problems.networks import flat_parameters
from sgdnoise.measure.network_noise import PerExampleGradients, projected_covariance
from sgdnoise.theory import batch_noise_factor, kuehn_rosenow, lambda_cross


class Quadratic(nn.Module):
    """Weights theta in R^d; the "output" for example a_n is theta - a_n."""

    def __init__(self, start: torch.Tensor) -> None:
        super().__init__()
        self.theta = nn.Parameter(start.clone())

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return self.theta - a


@pytest.mark.slow
@pytest.mark.parametrize("sampling", ["epoch", "with-replacement"])
def test_quadratic_module_matches_kuehn_rosenow(sampling):
    rng = np.random.default_rng(0)
    lam_true = np.array([4.0, 1.2, 0.25, 0.06])
    d, P, S, lr, beta = lam_true.size, 100, 5, 0.1, 0.5
    U = np.linalg.qr(rng.standard_normal((d, d)))[0]
    H = torch.as_tensor(U @ np.diag(lam_true) @ U.T)
    a = torch.as_tensor(rng.standard_normal((P, d)) @ np.diag([1.0, 2.0, 3.0, 4.0]))

    def loss_fn(output: torch.Tensor, _: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((output @ H) * output).sum(1).mean()

    data = (a, torch.zeros(P))
    model = Quadratic(a.mean(0))  # start at the minimiser
    lam, V = sgdnoise.hessian_eigenpairs(model, loss_fn, data, d - 1, tol=1e-12)
    assert np.allclose(lam.numpy(), lam_true[:-1], rtol=1e-10)
    sigma2_1 = np.diag(projected_covariance(PerExampleGradients(model, loss_fn, data).project(V)).numpy())
    assert lambda_cross(lr, beta, S, P) == pytest.approx(0.75)  # two directions above, one below

    M = P // S
    sampler = Sampler(sampling, P, S, rng=np.random.default_rng(1))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=beta)
    train(model, loss_fn, data, sampler, 50 * M, optimizer, progress=False)  # burn-in
    steps = 1200 * M
    recorder = ProjectedFluctuations(V, flat_parameters(model), steps, n_blocks=20)
    train(model, loss_fn, data, sampler, steps, optimizer, recorder=recorder, progress=False)
    measured = recorder.result()

    sigma2 = batch_noise_factor(sampling, P, S) * sigma2_1
    theory = kuehn_rosenow(lam.numpy(), sigma2, lr, beta, M if sampling == "epoch" else 1)
    for name in ("var_theta", "var_v"):
        z = (measured[name].value - getattr(theory, name)) / measured[name].stderr
        assert np.max(np.abs(z)) < 5, (name, z)
