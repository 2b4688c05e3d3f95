"""Theory of noise balance and stationary densities against dense references (Ziyin, Li, Ueda)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

from sgdnoise.errors import UsageError
from sgdnoise.experiments.balance import FIGURE_DATA
from sgdnoise.problems.diagonal import TeacherStream
from sgdnoise.theory import balance as theory

DATA = TeacherStream(**FIGURE_DATA)
M = DATA.moments  # T_c = 0.980 at depth 1


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
