"""Finite-step corrections to the law of balance, and the sign sectors (docs/theory.md §6d, §6e).

Statistical comparisons at the two-sided level ALPHA = 1e-3 (z = 3.29 standard errors over
independent replicas), as in test_balance_simulation.py.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from sgdnoise.dynamics.balance_sgd import simulate_sde, simulate_sgd
from sgdnoise.experiments.balance import FIGURE_DATA, ergodicity
from sgdnoise.experiments.balance.analysis import balance_rates
from sgdnoise.problems.diagonal import DiagonalNetwork, TeacherStream
from sgdnoise.stats.distributions import Z_CRIT
from sgdnoise.theory import balance as theory

DATA = TeacherStream(**FIGURE_DATA)
M = DATA.moments


@pytest.mark.parametrize("mu,tau", [(0.0, 1.0), (1.0, 0.3), (3.0, 1.0), (12.5, 1.0), (-0.2, 2.0), (40.0, 0.5)])
def test_mean_log_abs_normal_against_quadrature(mu, tau):
    density = stats.norm(mu, tau).pdf
    lo, hi = mu - 20 * tau, mu + 20 * tau
    points = [0.0] if lo < 0 < hi else None
    reference = integrate.quad(lambda x: np.log(abs(x)) * density(x), lo, hi, points=points, limit=500)[0]
    assert theory.mean_log_abs_normal(mu, tau) == pytest.approx(reference, abs=1e-8)


def test_exact_sgd_decay_tends_to_the_first_order_law_and_matches_monte_carlo():
    v = np.array([0.5, 1.0, 1.5])
    for lr in (1e-3, 1e-2):
        first = theory.balance_rate(M, v, lr) + lr * M.mean_gradient(v) ** 2
        exact = theory.sgd_balance_decay(v, lr, 1, DATA.slope, DATA.noise_std, DATA.x_std)
        np.testing.assert_allclose(exact, first, rtol=30 * lr**2)  # the next order is O(lr^2) relative
    lr, batch, n = 0.5, 2, 2_000_000
    x, y = DATA.draw(np.random.default_rng(5), (n, batch))
    G = np.mean(2 * x * (v[:, None, None] * x - y), axis=2)
    samples = -np.log(np.abs(1 - lr**2 * G**2)) / lr
    exact = theory.sgd_balance_decay(v, lr, batch, DATA.slope, DATA.noise_std, DATA.x_std)
    se = samples.std(axis=1) / math.sqrt(n)
    assert np.all(np.abs(samples.mean(axis=1) - exact) < Z_CRIT * se), (samples.mean(axis=1), exact, se)


def test_finite_step_law_of_balance_at_large_lr():
    """At T = lr = 0.5 the law of balance and its first order are many s.e. off; the exact SGD step
    and Euler-Maruyama to second order are not (the named discrepancies of issue 13)."""
    net, R = DiagonalNetwork(1), 1000
    theta = net.balanced(np.full(R, 0.5))
    theta[:, 0, 0] *= math.e**0.5
    theta[:, 0, 1] /= math.e**0.5
    T = 0.5
    sgd = simulate_sgd(net, DATA, T, 1, theta, 1500, 75, seed=50)
    sde = simulate_sde(net, M, T, theta, sgd.times, 0.003, seed=51)
    [p] = balance_rates(sgd, M, T, net, None, (DATA, T, 1))
    [q] = balance_rates(sde, M, T, net, None)
    assert p.measured - p.predicted_discrete > 8 * p.predicted_discrete_difference_se
    assert abs(p.measured - p.predicted_finite_step) < Z_CRIT * p.predicted_finite_step_difference_se
    assert abs(q.measured - q.predicted_finite_step) < Z_CRIT * q.predicted_finite_step_difference_se
    assert abs(q.predicted_finite_step - q.predicted_discrete) > 2 * q.predicted_finite_step_difference_se


@pytest.mark.slow
def test_sign_sectors_never_cross_and_relax_to_their_own_distributions():
    result = ergodicity(3, replicas=1500)
    assert result.crossings["sde"] == 0
    sectors = result.sectors["sde"]
    assert sum(s["n"] for s in sectors.values()) == 1500
    for k in (1, 2):
        s = sectors[k]
        assert s["distance"]["value"] < s["distance"]["critical"], (k, s["distance"])
        assert abs(s["fraction"] - s["predicted_fraction"]) < Z_CRIT * math.sqrt(
            s["predicted_fraction"] * (1 - s["predicted_fraction"]) / 1500)
    collapse = sectors[0]["collapse"]
    assert abs(collapse["measured_rate"] - collapse["predicted_rate"]) < Z_CRIT * collapse["difference_se"]
    assert collapse["final_max_abs_v"] < 1e-2
