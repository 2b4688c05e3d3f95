"""Noise balance and stationary distributions of diagonal linear networks (Ziyin, Li, Ueda).

Every statistical comparison uses independent replicas and a two-sided level
ALPHA = 1e-3: z = 3.29 standard errors, or the 1 - ALPHA quantile of the
Kolmogorov-Smirnov distance of n independent samples.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import integrate

from sgdnoise.cli import main
from sgdnoise.dynamics.balance_sgd import _sgd_steps, simulate_sde, simulate_sgd
from sgdnoise.errors import UsageError
from sgdnoise.experiments.balance import (
    ALPHA,
    FIGURE_DATA,
    TAIL_DATA,
    Z_CRIT,
    ks_distance,
    measure_growth_rate,
    measure_variance,
    replica_slopes,
    tail_fit,
)
from sgdnoise.problems.diagonal import (
    DataMoments,
    DiagonalNetwork,
    TeacherStream,
    moments_from_data,
    teacher_moments,
)
from sgdnoise.theory import balance as theory

DATA = TeacherStream(**FIGURE_DATA)
M = DATA.moments  # T_c = 0.980 at depth 1


# --- problem and kernels ---------------------------------------------------------------------

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
    _sgd_steps(theta, x, y, 0.1, 0.01, alive, np.zeros((5, 2, 6)), np.zeros(5, dtype=np.int64))
    np.testing.assert_allclose(theta, expected, rtol=1e-12)


# --- theory against dense references ---------------------------------------------------------

@pytest.mark.parametrize("depth, gamma", [(0, 0.0), (0, 0.003), (1, 0.0), (1, 0.003)])
@pytest.mark.parametrize("T", [0.05, 0.5])
def test_closed_forms_normalise_and_equal_the_quadrature(depth, gamma, T):
    closed = theory.closed_form_density(M, depth, T, gamma)
    general = theory.stationary_density(M, depth, T, weight_decay=gamma)
    log_pdf = theory.depth0_log_density if depth == 0 else theory.depth1_log_density
    # reference normaliser by adaptive quadrature, in v (depth 0) or in log v (depth 1, where
    # the density may be integrably singular at 0), split at the integrand's maximum
    to_v, jacobian = (lambda t: t, lambda t: 0.0) if depth == 0 else (np.exp, lambda t: t)
    t = np.linspace(-5, 5, 20001) if depth == 0 else np.linspace(-40, 10, 20001)
    log_integrand = log_pdf(to_v(t), M, T, gamma) + jacobian(t)
    split, offset = t[np.argmax(log_integrand)], np.max(log_integrand)

    def integrand(x):
        with np.errstate(all="ignore"):  # log 0 and overflow far out: the integrand is 0 there
            value = float(log_pdf(to_v(np.array([x])), M, T, gamma)[0]) + jacobian(x) - offset
        return math.exp(value) if math.isfinite(value) else 0.0

    Z = sum(integrate.quad(integrand, a, b, epsabs=0, epsrel=1e-11, limit=500)[0]
            for a, b in [(-np.inf, split), (split, np.inf)])
    # adaptive quadrature of the closed form is the reference; the tabulated densities carry
    # the trapezoidal and interpolation errors of >= 1600 points per width, ~1e-6
    at = closed.quantile(np.array([0.01, 0.25, 0.5, 0.75, 0.99]))
    reference = np.exp(log_pdf(at, M, T, gamma) - offset) / Z
    np.testing.assert_allclose(closed.pdf_at(at), reference, rtol=1e-5)
    np.testing.assert_allclose(general.pdf_at(at), reference, rtol=1e-5)
    assert general.cdf[-1] == pytest.approx(1.0, abs=1e-12)


def drift_and_diffusion(v, moments, depth, width, T, gamma):
    """Ito drift and squared diffusion of v on the balanced manifold (module docstring)."""
    D, d, s = depth, width, np.abs(v)
    grad_sq = d * (D + 1) * (s / d) ** (2 * D / (D + 1))
    g = moments.noise(v)
    mu = (-grad_sq * moments.mean_gradient(v) - 2 * gamma * (D + 1) * v
          + np.sign(v) * d * D * (D + 1) / 2 * (s / d) ** ((3 * D - 1) / (D + 1)) * 4 * T * g)
    return mu, grad_sq**2 * 4 * T * g


@pytest.mark.parametrize("depth, width, T, gamma", [
    (1, 1, 0.3, 0.0), (1, 3, 0.5, 0.002), (2, 1, 0.5, 0.0), (2, 3, 0.2, 0.0), (5, 2, 1.0, 0.0)])
def test_density_is_stationary_under_its_fokker_planck_generator(depth, width, T, gamma):
    """E_p[mu f' + B f''/2] = 0 (Theorem 4.2 by another route than the zero-flux formula).

    The test functions make the integrand vanish at v = 0 and grow slower than the tail
    decays, so the expectation converges and the grid ends do not matter.
    """
    density = theory.stationary_density(M, depth, T, width, gamma)
    for f1, f2 in [(lambda v: 1 / (1 + v**2), lambda v: -2 * v / (1 + v**2) ** 2),  # arctan v
                   (lambda v: 2 * v / (1 + v**2) ** 2,                               # v^2/(1+v^2)
                    lambda v: (2 - 6 * v**2) / (1 + v**2) ** 3)]:
        def generator(v):
            mu, B = drift_and_diffusion(v, M, depth, width, T, gamma)
            return mu * f1(v) + 0.5 * B * f2(v)

        def size(v):
            mu, B = drift_and_diffusion(v, M, depth, width, T, gamma)
            return np.abs(mu * f1(v)) + np.abs(0.5 * B * f2(v))

        assert abs(density.expect(generator)) <= 1e-5 * density.expect(size)


def test_critical_temperature_is_where_the_density_stops_normalising():
    T_c = theory.critical_temperature(M, 1)
    assert T_c == pytest.approx(M.beta2 / M.alpha3)
    assert theory.critical_temperature(M, 1, weight_decay=0.002) == pytest.approx(
        (M.beta2 - 0.002) / M.alpha3)
    near = theory.stationary_density(M, 1, 0.995 * T_c)
    assert near.cdf[-1] == pytest.approx(1.0)
    assert near.quantile(0.5) < 1e-3  # the mass piles up at v = 0 as T -> T_c
    with pytest.raises(UsageError, match="T_c"):
        theory.stationary_density(M, 1, 1.001 * T_c)
    assert math.isinf(theory.critical_temperature(M, 0))
    assert math.isinf(theory.critical_temperature(M, 3))


@pytest.mark.parametrize("depth", [1, 2, 5])
def test_tail_exponent_of_the_density(depth):
    density = theory.stationary_density(M, depth, 0.5)
    far = theory.windowed_power_law_exponent(density, 1e5, 1e7)
    # corrections to the asymptote are O(scale / v) ~ 1e-4 in this window
    assert far == pytest.approx(theory.tail_exponent(depth), abs=1e-3)


def test_tail_exponent_depth0_depends_on_T():
    density = theory.stationary_density(M, 0, 20.0)
    expected = theory.tail_exponent(0, M, 20.0)
    assert theory.windowed_power_law_exponent(density, 1e5, 1e7) == pytest.approx(expected,
                                                                                   abs=1e-3)


def test_infinite_depth_limit_is_approached_as_one_over_depth():
    tau = 0.3
    limit = theory.infinite_depth_density(M, tau)
    distance = {D: np.max(np.abs(theory.stationary_density(M, D, tau / D).cdf_at(limit.v)
                                 - limit.cdf)) for D in (30, 300)}
    assert distance[300] < 0.02
    assert 5 < distance[30] / distance[300] < 20  # O(1/D): ten times deeper, ten times closer


def test_fluctuation_inversion_in_theory():
    T_c = theory.critical_temperature(M, 1)
    var = theory.stationary_variance(M, 1, np.array([0.05, 0.45, 0.9, 1.1]) * T_c)
    assert var[0] < var[1] and var[1] > var[2] > 0 and var[3] == 0


# --- simulation against theory ---------------------------------------------------------------

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
    dist = ks_distance(run.v[-1], theory.stationary_density(M, depth, T))
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
    dist = ks_distance(run.v[-1], theory.stationary_density(M, depth, T, width))
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


# --- command line ----------------------------------------------------------------------------

@pytest.mark.parametrize("argv, option", [
    (["--depth", "-1", "--T", "0.1"], "--depth"),
    (["--width", "0", "--T", "0.1"], "--width"),
    (["--T", "0"], "--T"),
    (["--T", "-0.5"], "--T"),
    (["--lr", "0.1", "--batch", "0"], "--batch"),
    (["--T", "0.1", "--lr", "0.1"], "--T"),
    (["--T", "0.1", "--noise-std", "0"], "Delta"),
    (["--T", "0.1", "--weight-decay", "-1"], "--weight-decay"),
    (["--T", "0.1", "--replicas", "1"], "--replicas"),
])
def test_bad_input_is_refused_with_one_line(argv, option, capsys, tmp_path):
    assert main(["balance", *argv, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and option in err, err
    assert not (tmp_path / "x").exists()


def test_data_file_with_delta_zero_is_refused(capsys, tmp_path):
    x = np.linspace(-1, 1, 50)
    np.savez(tmp_path / "d.npz", x=x, y=3 * x)  # y a deterministic multiple of x: Delta = 0
    assert main(["balance", "--T", "0.1", "--data", str(tmp_path / "d.npz"),
                 "--out", str(tmp_path / "x")]) == 2
    assert "Delta" in capsys.readouterr().err
    with pytest.raises(UsageError, match="Delta"):
        DataMoments(1.0, 1.0, 1.0, 1.0, 1.0)


def test_balance_command_writes_its_results(tmp_path):
    out = tmp_path / "run"
    assert main(["balance", "--depth", "1", "--lr", "0.1", "--batch", "2", "--replicas", "200",
                 "--balance-replicas", "50", "--time", "100", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["T"] == pytest.approx(0.05)
    for key in ("T_c", "density", "measured_histogram", "distance", "balance_rate", "config"):
        assert summary[key] is not None, key
    assert summary["config"]["seed"] == 0
    assert {"measured", "predicted"} <= set(summary["balance_rate"])
    for name in ("density.png", "density.pdf", "balance.png", "samples.npz"):
        assert (out / name).is_file(), name
    assert summary["distance"]["alpha"] == ALPHA
