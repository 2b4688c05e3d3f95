"""Simulations of SGD and its SDE against the theory of noise balance (Ziyin, Li, Ueda).

Every statistical comparison uses independent replicas and a two-sided level
ALPHA = 1e-3: z = 3.29 standard errors, or the 1 - ALPHA quantile of the
Kolmogorov-Smirnov distance of n independent samples.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from sgdnoise.dynamics.balance_sgd import simulate_sde, simulate_sgd
from sgdnoise.experiments.balance import FIGURE_DATA, TAIL_DATA
from sgdnoise.problems.diagonal import DiagonalNetwork, TeacherStream, teacher_moments
from sgdnoise.stats.distributions import Z_CRIT, ks_distance, time_average_variance
from sgdnoise.stats.fits import log_growth_rate, replica_slopes, tail_fit
from sgdnoise.theory import balance as theory

DATA = TeacherStream(**FIGURE_DATA)
M = DATA.moments  # T_c = 0.980 at depth 1


def measure_growth_rate(run):
    """Rate of log|v| over the run, mean and SE over the replicas that did not diverge."""
    return log_growth_rate(run.v[:, ~run.diverged], run.times)


def measure_variance(run, burn_in):
    """Stationary Var v from the records after ``burn_in``, SE over replicas."""
    return time_average_variance(run.v[burn_in:, ~run.diverged])


def balanced_start(net, replicas):
    return net.balanced(np.full(replicas, M.beta2 / M.beta1))


@pytest.mark.slow
@pytest.mark.parametrize("depth", [0, 1])
def test_sgd_matches_the_density_at_small_T(depth):
    """lr = T = 0.05, S = 1: ten relaxation times from the minimiser, 4000 replicas."""
    net, T, R = DiagonalNetwork(depth), 0.05, 4000
    duration = 10 / (2 * M.beta1 * (depth + 1))
    run = simulate_sgd(net, DATA, T, 1, balanced_start(net, R), round(duration / T),
                       round(duration / T), seed=10 + depth)
    dist = ks_distance(run.v[-1], theory.stationary_density(M, depth, T).cdf_at)
    assert dist["value"] < dist["critical"], dist


@pytest.mark.slow
@pytest.mark.parametrize("depth, width, T", [(1, 2, 0.2), (2, 1, 0.2)])
def test_sde_matches_the_density(depth, width, T):
    """D = 1 with two unequal paths (the width drops out) and D = 2 (Theorem 4.2)."""
    net, R = DiagonalNetwork(depth, width), 4000
    theta = balanced_start(net, R)
    if width > 1:  # paths carrying 1/3 and 2/3 of v: their log-ratio is conserved at D = 1
        theta[:, 0] *= math.sqrt(2 / 3)
        theta[:, 1] *= math.sqrt(4 / 3)
    run = simulate_sde(net, M, T, theta, [0.0, 400.0], tol=0.01, seed=20 + depth)
    dist = ks_distance(run.v[-1], theory.stationary_density(M, depth, T, width).cdf_at)
    assert dist["value"] < dist["critical"], dist


@pytest.mark.slow
def test_critical_temperature_from_the_growth_of_log_v():
    """SDE: rate 4 beta_2 - 4 T alpha_3 either side of T_c; SGD (lr = T): its finite-lr rate."""
    net, R = DiagonalNetwork(1), 2000
    T_c = theory.critical_temperature(M, 1)
    theta = net.balanced(np.full(R, 1e-20))
    x, y = DATA.draw(np.random.default_rng(30), (1_000_000,))
    G0 = -2 * x * y
    signs = []
    for i, T in enumerate((0.9 * T_c, 1.1 * T_c)):
        sde = measure_growth_rate(simulate_sde(net, M, T, theta, [0.0, 200.0], tol=0.001,
                                               seed=31 + i))
        expected = theory.growth_rate_at_origin(M, T)
        assert abs(sde["rate"] - expected) < Z_CRIT * sde["rate_se"], (T, sde, expected)
        signs.append(np.sign(sde["rate"]))
        steps = round(200 / T)
        sgd = measure_growth_rate(simulate_sgd(net, DATA, T, 1, theta, steps, steps, seed=33 + i))
        per_draw = 2 / T * np.log(np.abs(1 + T * 2 * x * y))
        se = math.hypot(sgd["rate_se"], per_draw.std() / math.sqrt(per_draw.size))
        assert abs(sgd["rate"] - theory.sgd_growth_rate_at_origin(G0, T)) < Z_CRIT * se
    assert signs == [1, -1]


@pytest.mark.slow
def test_law_of_balance():
    """Imbalance decay of the SDE and of SGD against the law of balance along the same paths.

    Both schemes multiply the imbalance by ``1 - dt^2 G^2`` per step; the first-order
    term ``m^2 dt^2`` is in ``predicted_discrete``.  For the SDE the remaining O(dt)
    error is removed by Richardson extrapolation in the step control; for SGD at
    lr = 0.02 it is ~1e-4 of the rate, below the standard error.
    """
    net, R, gamma = DiagonalNetwork(1, 1, 0.0005), 2000, 0.0005
    theta = balanced_start(net, R)
    theta[:, 0, 0] *= math.e**0.5
    theta[:, 0, 1] /= math.e**0.5
    times = np.linspace(0, 400, 21)

    def difference(run, T):
        measured = -replica_slopes(run.times, np.log(np.abs(run.imbalance[:, :, 0])))
        path = theory.predicted_log_imbalance(M, T, gamma, run.integrals[:, :, 0, :],
                                              run.times[:, None], discrete=True)
        diff = measured + replica_slopes(run.times, path)
        return diff.mean(), diff.std(ddof=1) / math.sqrt(R), measured.mean()

    T = 0.2
    coarse = difference(simulate_sde(net, M, T, theta, times, tol=0.004, seed=40), T)
    fine = difference(simulate_sde(net, M, T, theta, times, tol=0.002, seed=41), T)
    extrapolated = 2 * fine[0] - coarse[0]
    assert abs(extrapolated) < Z_CRIT * math.hypot(2 * fine[1], coarse[1]), (coarse, fine)
    assert fine[2] > 4 * gamma  # the noise part T C_0 is there

    T = 0.02
    sgd = simulate_sgd(net, DATA, T, 1, theta, round(500 / T), round(25 / T), seed=42)
    diff, se, rate = difference(sgd, T)
    assert abs(diff) < Z_CRIT * se, (diff, se, rate)

    flow = simulate_sde(net, M, 0.0, theta[:1] * 0.7, times, tol=0.002, seed=43)
    imbalance = flow.imbalance[:, 0, 0]
    without_decay = imbalance * np.exp(4 * gamma * flow.times)  # gradient flow: only gamma acts
    np.testing.assert_allclose(without_decay, imbalance[0], rtol=1e-3)
    assert abs(flow.v[-1, 0] - flow.v[0, 0]) > 0.1  # while v moved


@pytest.mark.slow
def test_fluctuation_inversion_in_simulation():
    """SDE time averages: Var v at 0.45 T_c and 0.8 T_c against the density, and their order.

    Near T_c the mass near v = 0 equilibrates slowly: log v has exponential density of rate
    a = (T_c/T - 1)/2 there and diffuses at 16 T alpha_3, a mixing time 1/(16 T alpha_3 a^2)
    of ~500 at 0.8 T_c; the run is 5000 long, the first 1000 discarded.
    """
    net, R = DiagonalNetwork(1), 1000
    T_c = theory.critical_temperature(M, 1)
    measured = []
    for i, T in enumerate((0.45 * T_c, 0.8 * T_c)):
        run = simulate_sde(net, M, T, balanced_start(net, R), np.linspace(0, 5000, 101),
                           tol=0.01, seed=50 + i)
        var = measure_variance(run, burn_in=21)
        expected = theory.stationary_density(M, 1, T).variance
        assert abs(var["variance"] - expected) < Z_CRIT * var["variance_se"], (T, var, expected)
        measured.append(var)
    drop = measured[0]["variance"] - measured[1]["variance"]
    assert drop > Z_CRIT * math.hypot(measured[0]["variance_se"], measured[1]["variance_se"])


@pytest.mark.slow
def test_tail_exponent_in_simulation():
    """SDE samples of D = 1 in the window [2, 20] against the same fit applied to the density.

    500 replicas recorded every relaxation time (0.25) after 20 of them: samples of one
    replica are correlated, the standard error comes from the spread over replicas.
    """
    moments = teacher_moments(**TAIL_DATA)
    net, R = DiagonalNetwork(1), 500
    T = 0.6 * theory.critical_temperature(moments, 1)
    run = simulate_sde(net, moments, T, net.balanced(np.full(R, 1.0)), np.linspace(5, 65, 241),
                       tol=0.01, seed=60)
    fit = tail_fit(run.v[1:], 2.0, 20.0)
    expected = theory.windowed_power_law_exponent(theory.stationary_density(moments, 1, T),
                                                  2.0, 20.0)
    assert abs(fit["exponent"] - expected) < Z_CRIT * fit["exponent_se"], (fit, expected)
    assert fit["exponent_se"] < 0.3
