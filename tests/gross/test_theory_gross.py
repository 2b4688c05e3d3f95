"""New theory for the Gross et al. reproductions: moment trajectory, averaged noise, detailed balance, Q.

Each formula is checked against a brute-force reference: a direct SGD simulation with
standard errors (moment trajectory), an exact identity with the existing noise formula
(averaged noise), or dense linear algebra (detailed balance, Q).
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import solve_continuous_lyapunov

from sgdnoise.problems.linear import LinearRegression
from sgdnoise.theory import noise_covariance, stationary_covariance
from sgdnoise.theory.detailed_balance import (
    antisymmetric_part,
    antisymmetric_spectrum,
    detailed_balance_spectrum,
)
from sgdnoise.theory.relaxation import averaged_noise_covariance, moment_trajectory


def sgd_replicas(problem, lr, S, w0, times, replicas, seed, V):
    """Plain with-replacement SGD on R replicas; returns coordinates along ``V`` and the loss at ``times``."""
    gen = np.random.default_rng(seed)
    X, y = problem.X, problem.Y[:, 0]
    P = X.shape[0]
    w = np.tile(np.asarray(w0, float), (replicas, 1))
    z, loss, t = [], [], 0
    for target in times:
        while t < target:
            idx = gen.integers(0, P, size=(replicas, S))
            Xb = X[idx]
            res = np.einsum("rsn,rn->rs", Xb, w) - y[idx]
            w -= lr * np.einsum("rsn,rs->rn", Xb, res) / S
            t += 1
        z.append((w - problem.minimiser[:, 0]) @ V)
        loss.append(0.5 * np.mean((w @ X.T - y) ** 2, axis=1))
    return np.array(z), np.array(loss)


def test_moment_trajectory_matches_simulation_within_standard_errors():
    problem = LinearRegression.teacher_student(5, 9, 0.3, seed=3)
    lr, S, R = 0.8, 2, 6000
    w0 = np.zeros(5)
    times = np.array([0, 1, 3, 10, 30, 100])
    theory = moment_trajectory(problem.X, problem.Y, lr, S, w0, times)
    z, loss = sgd_replicas(problem, lr, S, w0, times, R, seed=1, V=theory.eigenvectors)
    mean_z, se_z = z.mean(axis=1), z.std(axis=1, ddof=1) / np.sqrt(R)
    second, se_second = (z**2).mean(axis=1), (z**2).std(axis=1, ddof=1) / np.sqrt(R)
    se_z[0], se_second[0] = 1e-12, 1e-12  # t = 0 is deterministic
    assert np.all(np.abs(mean_z - theory.mean) <= 4 * se_z + 1e-12)
    assert np.all(np.abs(second - theory.second_diagonal) <= 4 * se_second + 1e-12)
    se_loss = loss.std(axis=1, ddof=1) / np.sqrt(R) + 1e-12
    assert np.all(np.abs(loss.mean(axis=1) - theory.loss) <= 4 * se_loss)
    # the state-dependent noise matters here: the noise at w* alone would miss the loss by far more
    assert theory.loss[-1] > theory.loss_minimum


def test_moment_trajectory_tends_to_the_exact_stationary_covariance():
    problem = LinearRegression.teacher_student(4, 12, 0.2, seed=5)
    lr, S = 2.0, 3
    traj = moment_trajectory(problem.X, problem.Y, lr, S, np.zeros(4), np.array([20_000]))
    M = stationary_covariance(problem.X, problem.Y, lr, S, method="exact")
    V = traj.eigenvectors
    np.testing.assert_allclose(traj.second_diagonal[-1], np.diag(V.T @ M @ V), rtol=1e-6)
    np.testing.assert_allclose(traj.loss[-1] - traj.loss_minimum, 0.5 * np.trace(problem.hessian @ M), rtol=1e-6)


def test_averaged_noise_covariance_is_the_mean_of_the_noise_over_weights():
    problem = LinearRegression.teacher_student(4, 10, 0.5, seed=2)
    gen = np.random.default_rng(0)
    deltas = gen.normal(size=(7, 4)) * 0.3 + 0.1
    w_star = problem.minimiser[:, 0]
    brute = np.mean([noise_covariance(problem.X, problem.Y, 3, w=w_star + d) for d in deltas], axis=0)
    formula = averaged_noise_covariance(problem.X, problem.Y, deltas.T @ deltas / 7, 3, mean=deltas.mean(axis=0))
    np.testing.assert_allclose(formula, brute, rtol=1e-10, atol=1e-14)


@pytest.fixture
def near_square():
    problem = LinearRegression.teacher_student(8, 10, 0.25, seed=4)
    C = noise_covariance(problem.X, problem.Y, 2)
    return problem.hessian, C


def test_detailed_balance_spectrum_is_that_of_inverse_hessian_times_noise(near_square):
    H, C = near_square
    lr = 0.1
    dense = np.linalg.eigvals(0.5 * lr * np.linalg.solve(H, C))
    assert np.max(np.abs(dense.imag)) < 1e-8 * np.max(np.abs(dense.real))
    spectrum = detailed_balance_spectrum(H, C, lr)
    np.testing.assert_allclose(spectrum, np.sort(dense.real)[::-1], rtol=1e-8)
    assert spectrum.min() > 0
    # the symmetrised form is a different matrix (it may go negative); not what we plot
    symmetrised = 0.25 * lr * (np.linalg.solve(H, C) + C @ np.linalg.inv(H))
    assert not np.allclose(np.linalg.eigvalsh(symmetrised)[::-1], spectrum, rtol=1e-3)


def test_q_is_antisymmetric_and_rebuilds_the_lyapunov_solution(near_square):
    H, C = near_square
    lr = 0.1
    M = solve_continuous_lyapunov(H, lr * C)
    Q = antisymmetric_part(H, C, M, lr)
    np.testing.assert_allclose(Q, -Q.T, atol=1e-9 * np.abs(C).max())
    np.testing.assert_allclose(0.5 * lr * np.linalg.solve(H, C + Q), M, rtol=1e-8, atol=1e-12 * np.abs(M).max())
    a = antisymmetric_spectrum(H, C, M, lr)
    lam, V = np.linalg.eigh(H)
    half_inv = V @ np.diag(lam**-0.5) @ V.T
    dense = np.linalg.eigvals(0.5 * lr * half_inv @ Q @ half_inv)
    np.testing.assert_allclose(np.sort(np.abs(dense))[::-1], a, rtol=1e-7, atol=1e-12)


def test_q_vanishes_when_hessian_and_noise_commute():
    lam = np.array([0.5, 1.0, 2.0])
    H, C = np.diag(lam), np.diag([0.3, 0.1, 0.7])
    M = solve_continuous_lyapunov(H, 0.2 * C)
    assert np.max(antisymmetric_spectrum(H, C, M, 0.2)) < 1e-14
    np.testing.assert_allclose(np.sort(detailed_balance_spectrum(H, C, 0.2)), np.sort(np.diag(M)), rtol=1e-12)
