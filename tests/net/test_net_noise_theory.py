"""The weight-dependent-noise prediction (theory/net_noise.py) against a simulation of its own model.

Heavy-ball SGD with replacement on per-example gradients q_n + B_n p, the first-order model of
docs/theory.md §3g's network form, with B_n diagonal (so that the covariances between directions,
which the theory leaves out, vanish): the theory is then exact, and the simulated Var theta must
agree within 4 standard errors (across independent replicas).  Without the weight-dependent part
(Kuehn-Rosenow at the reference weights) the same simulation is far off.
"""
from __future__ import annotations

import numpy as np

from sgdnoise.theory import batch_noise_factor, kuehn_rosenow
from sgdnoise.theory.net_noise import hessian_spread, weight_dependent_fluctuations

P, S, K, LR, BETA = 40, 4, 3, 0.05, 0.5


def problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    lam = np.array([4.0, 1.0, 0.25])
    q = rng.normal(size=(P, K))
    q -= q.mean(0)
    diag = lam + rng.normal(scale=[12.0, 6.0, 3.0], size=(P, K))
    diag += lam - diag.mean(0)  # mean Hessian exactly diag(lam)
    return lam, q, diag


def simulate(lam, q, diag, steps=12_000, burn=2_000, replicas=64, seed=1):
    rng = np.random.default_rng(seed)
    p, v = np.zeros((replicas, K)), np.zeros((replicas, K))
    total, square = np.zeros((replicas, K)), np.zeros((replicas, K))
    for t in range(steps):
        batch = rng.integers(0, P, size=(replicas, S))
        g = q[batch].mean(1) + diag[batch].mean(1) * p
        v = BETA * v - LR * g
        p = p + v
        if t >= burn:
            total += p
            square += p * p
    n = steps - burn
    var = square / n - (total / n) ** 2
    return var.mean(0), var.std(0, ddof=1) / np.sqrt(replicas)


def test_prediction_matches_simulation_of_its_model_with_replacement():
    lam, q, diag = problem()
    blocks = np.stack([np.diag(d) for d in diag])
    f = batch_noise_factor("with-replacement", P, S)
    reference = f * q.var(0)
    found = weight_dependent_fluctuations(lam, reference, hessian_spread(blocks), f, LR, BETA, 1)
    sim, se = simulate(lam, q, diag)
    z = (found.var_theta - sim) / se
    assert np.all(np.abs(z) < 4), (found.var_theta, sim, se)
    assert 0.2 < found.weight_dependent_share.max() < 1 and found.spectral_radius < 1
    plain = kuehn_rosenow(lam, reference, LR, BETA, 1).var_theta
    assert np.max(np.abs(plain - sim) / se) > 10  # the weight-dependent part matters here


def test_unstable_coupling_gives_nan():
    lam = np.array([1.0])
    found = weight_dependent_fluctuations(lam, np.array([1.0]), np.array([[1e6]]), 0.1, 0.1, 0.0, 1)
    assert found.spectral_radius >= 1 and np.isnan(found.var_theta).all()


def test_lagged_closure_reduces_to_kuehn_rosenow_and_to_the_white_prediction():
    """Without weight dependence it is Kuehn-Rosenow (epoch and with replacement) to round-off; with
    replacement the lagged kernel is white, so it equals the white self-consistent solution."""
    from sgdnoise.theory.net_noise import lagged_weight_dependent_fluctuations

    lam, lr, beta, M = np.array([9.3, 2.0, 0.5, 0.08]), 0.005, 0.9, 22
    noise = np.array([1.0, 2.0, 0.5, 0.3])
    for m in (1, M):
        found = lagged_weight_dependent_fluctuations(lam, noise, np.zeros((4, 4)), 0.1, lr, beta, m)
        kr = kuehn_rosenow(lam, noise, lr, beta, m)
        np.testing.assert_allclose(found["var_theta"], kr.var_theta, rtol=1e-8)
        np.testing.assert_allclose(found["var_v"], kr.var_v, rtol=1e-8)
    spread = np.random.default_rng(0).random((4, 4)) * 300
    lagged = lagged_weight_dependent_fluctuations(lam, noise, spread, 0.015, lr, beta, 1)
    white = weight_dependent_fluctuations(lam, noise, spread, 0.015, lr, beta, 1)
    np.testing.assert_allclose(lagged["var_theta"], white.var_theta, rtol=1e-8)
    np.testing.assert_allclose(lagged["var_v"], white.var_v, rtol=1e-8)
    # epochs: between the two bounds of the weight-dependent part's kernel (to 1 %: where the weights
    # oscillate within an epoch, kappa_h rho_h can be a shade more anti-correlated than kappa_h)
    found = lagged_weight_dependent_fluctuations(lam, noise, spread, 0.015, lr, beta, M)["var_theta"]
    low = weight_dependent_fluctuations(lam, noise, spread, 0.015, lr, beta, M, kernel="epoch").var_theta
    high = weight_dependent_fluctuations(lam, noise, spread, 0.015, lr, beta, M, kernel="white").var_theta
    assert np.all(0.99 * low <= found) and np.all(found <= high * (1 + 1e-9))
