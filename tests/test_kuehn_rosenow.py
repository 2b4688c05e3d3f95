"""Kuehn & Rosenow closed form (docs/theory.md §3d) against independent evaluations."""
from __future__ import annotations

import numpy as np
import pytest

from sgdnoise.errors import UsageError
from sgdnoise.theory import (
    kuehn_rosenow,
    lambda_cross,
    noise_kernel,
    quadratic_stationary_covariance,
    tau_sgd,
)

LR = 0.1
CASES = [(lam, beta, M) for lam in (0.05, 0.7, 12.0) for beta in (0.0, 0.5, 0.9) for M in (2, 7, 40)]


def impulse_response(lam: float, beta: float, n_terms: int) -> np.ndarray:
    """a_j = (D^j)_11 from theta_k = (1 + beta - lr lam) theta_{k-1} - beta theta_{k-2}, theta_0 = 1."""
    a = np.zeros(n_terms)
    a[0], a[1] = 1.0, 1 + beta - LR * lam
    for j in range(2, n_terms):
        a[j] = (1 + beta - LR * lam) * a[j - 1] - beta * a[j - 2]
    return a


def kernel_sum(a: np.ndarray, M: int) -> float:
    """sum_{j,l} a_j a_l kappa(j - l) by direct summation over lags."""
    kappa = noise_kernel("epoch", M, M) if M > 1 else np.ones(1)
    return float(a @ a + 2 * sum(kappa[h] * (a[h:] @ a[:-h]) for h in range(1, len(kappa))))


def literal_eq14(lam: float, sigma2: float, beta: float, M: int) -> np.ndarray:
    """Eqs. 14-17 as printed, with explicit matrix powers and inverses."""
    x = LR * lam
    F = np.array([[(1 + beta) / x, 2 * beta * (x - 1 - beta) / x], [2.0, 2 * (x - 2)]])
    F /= (1 - beta) * (2 * (1 + beta) - x)
    D = np.array([[1 + beta - x, -beta], [1.0, 0.0]])
    I, e1 = np.eye(2), np.array([1.0, 0.0])
    inv = np.linalg.inv(I - D)
    E = D @ (np.linalg.matrix_power(D, M) + (I - D) * M - I) @ inv @ inv / (M * (M - 1)) @ np.outer(e1, e1)
    return LR**2 * sigma2 * F @ (e1 - (E + E.T) @ e1)


@pytest.mark.parametrize("lam, beta, M", CASES)
def test_closed_form_equals_direct_kernel_sum_over_impulse_response(lam, beta, M):
    radius = np.abs(np.roots([1.0, -(1 + beta - LR * lam), beta])).max()
    a = impulse_response(lam, beta, int(80 / -np.log(radius)) + 10)
    b = np.diff(a, prepend=0.0)  # velocity response v_j = theta_j - theta_{j-1}
    kr = kuehn_rosenow(lam, 2.0, LR, beta, M)
    assert kr.var_theta == pytest.approx(LR**2 * 2.0 * kernel_sum(a, M), rel=1e-9)
    assert kr.var_v == pytest.approx(LR**2 * 2.0 * kernel_sum(b, M), rel=1e-9)
    assert kr.tau == pytest.approx(2 * kr.var_theta / kr.var_v, rel=1e-14)


@pytest.mark.parametrize("lam, beta, M", CASES)
def test_closed_form_equals_printed_equations(lam, beta, M):
    kr = kuehn_rosenow(lam, 2.0, LR, beta, M)
    want = literal_eq14(lam, 2.0, beta, M)
    assert [kr.var_theta, kr.var_v] == pytest.approx(want, rel=1e-8)


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9])
def test_one_batch_per_epoch_is_the_uncorrelated_scalar_formula(beta):
    lam = np.array([0.01, 0.3, 2.0, 15.0])
    kr = kuehn_rosenow(lam, 3.0, LR, beta, 1)
    x = LR * lam
    scalar = LR * 3.0 * (1 + beta) / (lam * (1 - beta) * (2 * (1 + beta) - x))  # docs/theory.md §3b
    np.testing.assert_allclose(kr.var_theta, scalar, rtol=1e-13)
    np.testing.assert_allclose(kr.tau, (1 + beta) / x, rtol=1e-13)
    a = impulse_response(2.0, beta, 4000)
    assert kr.var_v[2] == pytest.approx(LR**2 * 3.0 * kernel_sum(np.diff(a, prepend=0.0), 1), rel=1e-10)


@pytest.mark.parametrize("beta, M", [(0.0, 10), (0.6, 25)])
def test_closed_form_equals_anticorrelated_solver_on_a_commuting_problem(beta, M):
    rng = np.random.default_rng(0)
    lam, sigma2 = np.array([1e-3, 0.05, 0.4, 3.0, 15.0]), np.array([0.5, 2.0, 1.0, 3.0, 0.7])
    Q = np.linalg.qr(rng.normal(size=(5, 5)))[0]
    H, C = Q @ np.diag(lam) @ Q.T, Q @ np.diag(sigma2) @ Q.T
    sigma = Q.T @ quadratic_stationary_covariance(H, C, LR, beta, "anticorrelated", M) @ Q
    kr = kuehn_rosenow(lam, sigma2, LR, beta, M)
    np.testing.assert_allclose(np.diag(sigma), kr.var_theta, rtol=1e-10)
    assert np.abs(sigma - np.diag(np.diag(sigma))).max() < 1e-12 * np.abs(sigma).max()


def test_flat_directions_are_finite_and_continuous_down_to_zero_curvature():
    M = 50
    kr = kuehn_rosenow([0.0, 1e-14, 1e-10], 1.0, LR, 0.0, M)
    # beta = 0, lambda = 0: var_theta = lr^2 sigma^2 (M + 1) / 6, var_v = lr^2 sigma^2 (derived here)
    np.testing.assert_allclose(kr.var_theta, LR**2 * (M + 1) / 6, rtol=1e-8)
    np.testing.assert_allclose(kr.var_v, LR**2, rtol=1e-8)
    assert np.isinf(kuehn_rosenow(0.0, 1.0, LR, 0.0, 1).var_theta)


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9])
def test_regimes_eqs_19_and_20_at_large_epochs(beta):
    """Large M: tau -> tau_SGD far below lambda_cross, tau -> (1 + beta)/(lr lambda) far above."""
    S, P = 10, 10**7
    M = P // S
    lam_c = lambda_cross(LR, beta, S, P)
    assert lam_c == pytest.approx(3 * (1 - beta) * S / (LR * P))
    lam = np.array([1e-6 * lam_c, 1e3 * lam_c])
    kr = kuehn_rosenow(lam, 1.0, LR, beta, M)
    assert kr.tau[0] == pytest.approx(tau_sgd(beta, M), rel=1e-3)
    assert kr.tau[1] == pytest.approx((1 + beta) / (LR * lam[1]), rel=1e-3)
    assert kr.var_v == pytest.approx(LR**2 / (1 - beta**2), rel=2e-3)  # eqs. 19-20
    assert tau_sgd(beta, M) == pytest.approx(M / 3 * (1 + beta) / (1 - beta))


@pytest.mark.parametrize(
    "args, match",
    [
        (dict(hessian_eigenvalues=[-0.1, 1.0]), "hessian_eigenvalues must be >= 0; got -0.1"),
        (dict(hessian_eigenvalues=[np.nan]), "hessian_eigenvalues"),
        (dict(noise_variances=-1.0), "noise_variances"),
        (dict(hessian_eigenvalues=[1.0, 30.0]), "stability limit"),
        (dict(momentum=1.0), "momentum"),
        (dict(lr=-0.1), "lr"),
        (dict(batches_per_epoch=0), "batches_per_epoch"),
        (dict(batches_per_epoch=2.5), "batches_per_epoch"),
    ],
)
def test_bad_input_is_refused(args, match):
    base = dict(hessian_eigenvalues=[1.0], noise_variances=1.0, lr=LR, momentum=0.5, batches_per_epoch=4)
    with pytest.raises(UsageError, match=match):
        kuehn_rosenow(**(base | args))


def test_round_off_negatives_count_as_zero():
    kr = kuehn_rosenow([-1e-17, 1.0], [1.0, -1e-18], LR, 0.0, 5)
    zero = kuehn_rosenow([0.0, 1.0], [1.0, 0.0], LR, 0.0, 5)
    np.testing.assert_array_equal(kr.var_theta, zero.var_theta)


def test_helpers_refuse_bad_input():
    with pytest.raises(UsageError, match="batch_size"):
        lambda_cross(LR, 0.0, 0, 100)
    with pytest.raises(UsageError, match="momentum"):
        tau_sgd(1.5, 10)
    with pytest.raises(UsageError, match="batches_per_epoch"):
        tau_sgd(0.0, 0)
