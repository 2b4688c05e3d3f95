"""Diagonal networks: data moments, gradients and the compiled SGD kernel (Ziyin, Li, Ueda)."""
from __future__ import annotations

import math

import numpy as np

from sgdnoise.dynamics.balance_kernels import N_INTEGRALS, _sgd_steps
from sgdnoise.experiments.balance import FIGURE_DATA
from sgdnoise.problems.diagonal import DiagonalNetwork, TeacherStream, moments_from_data

DATA = TeacherStream(**FIGURE_DATA)
M = DATA.moments  # T_c = 0.980 at depth 1


def test_teacher_moments_match_a_large_sample():
    rng = np.random.default_rng(0)
    x, y = DATA.draw(rng, (2_000_000,))
    sample = moments_from_data(x, y)
    for name in ("alpha1", "alpha2", "alpha3", "beta1", "beta2"):
        a, b = getattr(sample, name), getattr(M, name)
        # relative sampling error of a fourth-order moment with n = 2e6 is ~ 3/sqrt(n)
        assert abs(a - b) <= 5 * 3 / math.sqrt(x.size) * max(abs(b), M.alpha3), name


def test_output_gradient_matches_finite_differences():
    net = DiagonalNetwork(depth=3, width=2)
    theta = np.random.default_rng(1).normal(size=(4, 2, 4))
    grad = net.output_gradient(theta)
    h = 1e-6
    for i, k in [(0, 0), (1, 2), (1, 3)]:
        bump = np.zeros_like(theta)
        bump[:, i, k] = h
        fd = (net.output(theta + bump) - net.output(theta - bump)) / (2 * h)
        np.testing.assert_allclose(grad[:, i, k], fd, rtol=1e-7, atol=1e-9)


def test_compiled_sgd_step_matches_numpy_reference():
    net = DiagonalNetwork(depth=2, width=3, weight_decay=0.01)
    rng = np.random.default_rng(2)
    theta = rng.normal(size=(5, 3, 3))
    x, y = DATA.draw(rng, (5, 1, 4))
    expected = theta - 0.1 * net.loss_gradient(theta, x[:, 0], y[:, 0])
    alive = np.ones(5, dtype=bool)
    _sgd_steps(theta, x, y, 0.1, 0.01, alive, np.zeros((5, 2, N_INTEGRALS)),
               np.zeros(5, dtype=np.int64))
    np.testing.assert_allclose(theta, expected, rtol=1e-12)
