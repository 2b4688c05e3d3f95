"""Anti-PGD theory in the widening valley (docs/theory.md §7a) against Monte Carlo and replicas.

Tolerances are Z standard errors of the Monte Carlo or replica means (Z = 4: with the dozen
comparisons of a test a false alarm has probability below 1e-3 for a fresh seed; the seeds
are fixed).
"""
from __future__ import annotations

import numpy as np
import pytest

from sgdnoise.dynamics.injection import valley_replicas
from sgdnoise.theory import anti_pgd as theory

Z = 4.0


def _loss_and_gradient(u: np.ndarray, v: np.ndarray):
    u2 = (u**2).sum(-1)
    return 0.5 * v**2 * u2, (v**2)[..., None] * u, v * u2


def test_smoothed_loss_is_the_regularised_objective():
    """E_xi L(z + xi) = L + sigma^2/2 tr H + d sigma^4 / 2 (exact), checked by Monte Carlo."""
    gen = np.random.default_rng(0)
    dim, sigma, n = 4, 0.3, 400_000
    u, v = gen.normal(size=dim), 0.7
    u2 = float((u**2).sum())
    smoothed = theory.valley_smoothed_loss(u2, v**2, dim, sigma)
    regularised = 0.5 * v**2 * u2 + sigma**2 / 2 * (u2 + dim * v**2) + dim * sigma**4 / 2
    assert smoothed == pytest.approx(regularised, rel=1e-14)
    xi = sigma * gen.normal(size=(n, dim + 1))
    samples, _, _ = _loss_and_gradient(u + xi[:, :dim], v + xi[:, dim])
    assert abs(samples.mean() - smoothed) < Z * samples.std() / np.sqrt(n)


def test_conditional_mean_of_z_is_gradient_descent_on_the_smoothed_loss():
    """E[z - lr grad L(z + xi)] = z - lr grad L~(z) for xi independent of z, componentwise."""
    gen = np.random.default_rng(1)
    dim, sigma, lr, n = 3, 0.25, 0.1, 400_000
    u, v = gen.normal(size=dim), -0.6
    xi = sigma * gen.normal(size=(n, dim + 1))
    _, gu, gv = _loss_and_gradient(u + xi[:, :dim], v + xi[:, dim])
    step = np.column_stack([u - lr * gu, v - lr * gv])
    tu, tv = theory.valley_regularised_gradient(u, np.float64(v), sigma)
    expected = np.append(u - lr * tu, v - lr * tv)
    assert np.all(np.abs(step.mean(0) - expected) < Z * step.std(0) / np.sqrt(n))


def test_moment_step_is_exact_for_a_point_mass():
    """With kappa = 1, U = |u|^2 and V = v^2 the one-step second moments are exact given z."""
    gen = np.random.default_rng(2)
    dim, sigma, lr, n = 5, 0.3, 0.2, 400_000
    u, v = 0.5 * gen.normal(size=dim), 0.4
    xi = sigma * gen.normal(size=(n, dim + 1))
    _, gu, gv = _loss_and_gradient(u + xi[:, :dim], v + xi[:, dim])
    new_u2, new_v2 = ((u - lr * gu) ** 2).sum(1), (v - lr * gv) ** 2
    U, V = theory.valley_moment_step(float((u**2).sum()), v**2, lr, sigma, dim, kappa=1.0)
    assert abs(new_u2.mean() - U) < Z * new_u2.std() / np.sqrt(n)
    assert abs(new_v2.mean() - V) < Z * new_v2.std() / np.sqrt(n)


def test_gd_is_the_sigma_zero_path_exactly():
    gd = valley_replicas("gd", 1, 300, 0.1, 0.0, dim=3, record_every=30)
    predicted = theory.valley_leading_order(300, 0.1, 0.0, dim=3, record_every=30)
    assert np.allclose(gd["hessian_trace"][:, 0], predicted.hessian_trace, rtol=1e-12)
    assert np.allclose(gd["loss"][:, 0], predicted.loss, rtol=1e-10, atol=1e-300)


def test_anti_pgd_replicas_follow_the_moment_recursion():
    """Mean tr H of theta and of z over 400 replicas against the recursion, within Z s.e.; the
    leading order misses tr H(z) by far more (its z has no scatter)."""
    lr, sigma, dim, steps, every = 0.1, 0.2, 3, 600, 100
    run = valley_replicas("anti-pgd", 400, steps, lr, sigma, dim=dim, record_every=every, seed=5)
    moments = theory.valley_moments(steps, lr, sigma, dim=dim, record_every=every)
    leading = theory.valley_leading_order(steps, lr, sigma, dim=dim, record_every=every)
    n = np.sqrt(400)
    for measured, predicted in ((run["hessian_trace"], moments.hessian_trace),
                                (run["hessian_trace_z"], moments.u2 + dim * moments.v2),
                                (run["loss"], moments.loss)):
        mean, se = measured.mean(1)[1:], measured.std(1, ddof=1)[1:] / n
        assert np.all(np.abs(mean - predicted[1:]) < Z * se)
    z_mean, z_se = run["hessian_trace_z"].mean(1)[1:], run["hessian_trace_z"].std(1, ddof=1)[1:] / n
    assert np.max(np.abs(z_mean - (leading.u2 + dim * leading.v2)[1:]) / z_se) > Z


def test_anti_pgd_ends_at_the_predicted_flatness():
    """Time- then replica-averaged tr H(theta) at the end: 2 d sigma^2 + lr sigma^4 d (d + 5) / 2."""
    lr, sigma, dim = 0.1, 0.3, 2
    run = valley_replicas("anti-pgd", 200, 2000, lr, sigma, dim=dim, record_every=10, seed=7)
    per_replica = run["hessian_trace"][150:].mean(0)
    _, corrected = theory.valley_stationary_trace(lr, sigma, dim)
    assert abs(per_replica.mean() - corrected) < Z * per_replica.std(ddof=1) / np.sqrt(len(per_replica))
