"""Flatness, curvature, trajectory PCA and log-log fits of ``sgdnoise ivfr`` on cases with known answers."""
from __future__ import annotations

import numpy as np
import pytest

from sgdnoise.errors import UsageError
from sgdnoise.measure.flatness import curvature, flatness, loss_profiles
from sgdnoise.measure.pca import aggregate, drift_ranks, trajectory_pca
from sgdnoise.stats.fits import loglog_fit


def quadratic(A: np.ndarray, L0: float, centre: np.ndarray):
    return lambda pts: L0 + 0.5 * np.einsum("nd,de,ne->n", pts - centre, A, pts - centre)


@pytest.mark.parametrize("kappa", [np.e, 1.5, 10.0])
def test_flatness_of_an_exact_quadratic(kappa):
    rng = np.random.default_rng(0)
    Q = np.linalg.qr(rng.normal(size=(6, 6)))[0]
    k = np.array([0.01, 0.1, 0.5, 1.0, 3.0, 40.0])
    A = (Q * k) @ Q.T
    c = rng.normal(size=6)
    L0 = 0.7
    result = flatness(quadratic(A, L0, c), c, Q.T, kappa)
    np.testing.assert_allclose(result.width, 2 * np.sqrt(2 * (kappa - 1) * L0 / k), rtol=1e-9)
    np.testing.assert_allclose(result.asymmetry, 0, atol=1e-9)
    assert result.loss0 == pytest.approx(L0)
    np.testing.assert_allclose(curvature(lambda p, v: v @ A, c, Q.T), k, rtol=1e-12)
    prof = loss_profiles(quadratic(A, L0, c), c, Q.T[:2], np.array([-1.0, 0.0, 2.0]))
    np.testing.assert_allclose(prof, L0 + 0.5 * k[:2, None] * np.array([1.0, 0.0, 4.0]))


def test_asymmetric_and_unbounded_profiles_are_reported():
    A = np.diag([1.0, 0.0])
    minimum = np.zeros(2)
    centre = np.array([0.5, 0.0])  # off the minimum along e_1; e_2 is exactly flat
    result = flatness(quadratic(A, 1.0, minimum), centre, np.eye(2))
    assert result.bounded.tolist() == [True, False]
    assert np.isinf(result.width[1])
    assert result.asymmetry[0] < -0.1  # the loss rises faster towards +s


def test_bad_kappa_and_wrong_direction_size_are_refused():
    loss = quadratic(np.eye(3), 1.0, np.zeros(3))
    with pytest.raises(UsageError, match="kappa"):
        flatness(loss, np.zeros(3), np.eye(3), kappa=1.0)
    with pytest.raises(UsageError, match="direction must have 3 entries"):
        flatness(loss, np.zeros(3), np.ones((2, 4)))


def ar1(rng, R: int, n: int, variances: np.ndarray, rho: float, Q: np.ndarray) -> np.ndarray:
    """Stationary AR(1) trajectories with covariance Q diag(variances) Q^T."""
    x = rng.normal(size=(R, len(variances))) * np.sqrt(variances)
    out = np.empty((R, n, len(variances)))
    for t in range(n):
        x = rho * x + np.sqrt(1 - rho**2) * np.sqrt(variances) * rng.normal(size=x.shape)
        out[:, t] = x
    return out @ Q.T


def test_pca_of_a_synthetic_trajectory_with_known_covariance():
    rng = np.random.default_rng(1)
    variances = np.array([4.0, 2.0, 1.0, 0.5, 0.25])
    Q = np.linalg.qr(rng.normal(size=(5, 5)))[0]
    snaps = ar1(rng, 16, 4000, variances, 0.5, Q) + 3.0
    pca = trajectory_pca(snaps)
    mean, se = aggregate(pca.variances)
    assert np.all(np.abs(mean - variances) < 4 * se + 0.01 * variances), (mean, se)
    overlap = np.abs(np.einsum("rmd,dm->rm", pca.directions, Q))
    assert overlap.min() > 0.9
    assert drift_ranks(pca) == []


def test_a_drifting_direction_is_detected():
    rng = np.random.default_rng(2)
    snaps = ar1(rng, 4, 2000, np.array([1.0, 0.5, 0.2]), 0.3, np.eye(3))
    snaps[..., 0] += np.cumsum(rng.normal(size=(4, 2000)), axis=1) * 0.2  # a random walk along e_1
    pca = trajectory_pca(snaps)
    assert 0 in drift_ranks(pca)
    assert np.abs(pca.directions[:, 0, 0]).min() > 0.9


def test_loglog_fit_recovers_an_exponent_with_an_interval():
    rng = np.random.default_rng(3)
    x = np.exp(rng.uniform(-2, 2, size=(8, 30)))
    y = x**1.7 * np.exp(0.1 * rng.normal(size=x.shape))
    fit = loglog_fit(x, y, seed=1)
    assert fit["exponent"] == pytest.approx(1.7, abs=0.05)
    assert fit["ci"][0] < 1.7 < fit["ci"][1] and fit["n"] == 240
    assert loglog_fit(x[:, :1], y[:, :1], np.zeros((8, 1), bool))["exponent"] is None
