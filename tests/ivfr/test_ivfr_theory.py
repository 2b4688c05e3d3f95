"""Linear networks: exact gradients, the symmetry orbit, and the linearised theory against simulation."""
from __future__ import annotations

import numpy as np
import pytest

from sgdnoise.dynamics.linear_networks import LinearNetwork, balanced_minimum
from sgdnoise.errors import UsageError
from sgdnoise.experiments.ivfr import IvfrConfig, run
from sgdnoise.problems.linear import LinearRegression
from sgdnoise.theory.linear_networks import balance, linearised_covariance, rebalanced_minimum


@pytest.fixture(scope="module")
def data():
    p = LinearRegression.teacher_student(6, 60, 0.25, outputs=4, seed=1)
    return p.X, p.Y


@pytest.mark.parametrize("layers, hidden", [(1, 0), (2, 2), (3, 2)])
def test_gradients_and_balanced_minimum(data, layers, hidden):
    X, Y = data
    net = LinearNetwork.build(6, 4, hidden, layers)
    w = balanced_minimum(net, X, Y)
    assert np.abs(net.gradient(w[None], X, Y)).max() < 1e-12
    Ws = net.unflatten(w)
    for a, b in zip(Ws[:-1], Ws[1:]):
        np.testing.assert_allclose(a @ a.T, b.T @ b, atol=1e-12)
    x = np.random.default_rng(0).normal(size=(1, net.dim))
    e = 1e-6 * np.eye(net.dim)[:5]
    fd = (net.loss(x + e, X, Y) - net.loss(x - e, X, Y)) / 2e-6
    np.testing.assert_allclose(fd, net.gradient(x, X, Y)[0, :5], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(net.per_example_gradients(w, X, Y).mean(0), 0, atol=1e-12)


def test_zero_modes_of_a_known_symmetry_orbit(data):
    """W1 -> A W1, W2 -> W2 A^-1 with h = 2: four null directions of H, no noise, no variance."""
    X, Y = data
    net = LinearNetwork.build(6, 4, 2, 2)
    w = balanced_minimum(net, X, Y)
    W1, W2 = net.unflatten(w)
    A = np.array([[1.3, 0.4], [-0.2, 0.9]])
    moved = net.flatten([A @ W1, W2 @ np.linalg.inv(A)])
    assert net.loss(moved[None], X, Y)[0] == pytest.approx(net.loss(w[None], X, Y)[0], rel=1e-12)
    T = net.symmetry_generators(w)
    assert T.shape == (net.dim, 4) and np.linalg.matrix_rank(T) == 4
    H = net.hessian(w, X, Y)
    G = net.per_example_gradients(w, X, Y)
    assert np.abs(H @ T).max() < 1e-9 and np.abs(G @ T).max() < 1e-12
    lin = linearised_covariance(H, G, 0.1, 0.0, "with-replacement", 5, T)
    assert lin.zero_modes == 4
    for cov in lin.covariance.values():
        assert np.abs(cov @ T).max() < 1e-12 * np.abs(cov).max() * net.dim
        assert np.linalg.eigvalsh(cov)[-1] > 0
    with pytest.raises(UsageError):  # without the symmetry projected out, H is singular: no solution
        linearised_covariance(H, G, 0.1, 0.0, "with-replacement", 5, None)
    D = np.array([[0.2, 0.05], [0.05, -0.1]])
    V1, V2 = rebalanced_minimum(W1, W2, D)
    np.testing.assert_allclose(balance(V1, V2), D, atol=1e-9)
    np.testing.assert_allclose(V2 @ V1, W2 @ W1, atol=1e-10)


@pytest.mark.slow
def test_linearised_theory_matches_two_layer_simulation():
    """Measured variances along the predicted directions within 4 standard errors plus twice the
    stated state-dependence bias (docs/theory.md §3c), directions off the orbit's curvature."""
    config = IvfrConfig(model="two-layer", N=4, P=40, outputs=2, hidden=1, lr=0.08, batch_size=5,
                        steps=30_000, burn_in=3_000, snapshot_every=10, replicas=16, seed=2)
    result = run(config, progress=False)
    assert 0 < result.theory["state_dependence"] < 0.05
    assert directions_agreeing(result, ("W1", "W2")) >= 3


def directions_agreeing(result, layers) -> int:
    """Assert |measured - predicted| <= 4 se + 2 state_dependence predicted along the predicted directions
    off the orbit's curvature (overlap < 0.5) of ``layers``; return how many directions were checked."""
    bias = result.theory["state_dependence"]
    checked = 0
    for name in layers:
        th = result.theory[name]
        pred, meas = th["pca_variances"], th["measured_along_predicted"]
        se = np.abs(meas - pred) / np.abs(th["z_scores"])
        use = th["orbit_overlap"] < 0.5
        assert np.all(np.abs(meas - pred)[use] <= 4 * se[use] + 2 * bias * pred[use]), (name, th["z_scores"])
        checked += use.sum()
    return checked


@pytest.mark.slow
def test_linearised_theory_matches_deep_linear_simulation():
    """Three layers (N = 4, h = 2, K = 3): the measured variances along the predicted directions off the
    orbit's curvature within 4 standard errors plus twice the stated state-dependence bias (§3c)."""
    config = IvfrConfig(model="deep-linear", layers=3, N=4, P=40, outputs=3, hidden=2, lr=0.04, batch_size=5,
                        steps=40_000, burn_in=3_000, snapshot_every=10, replicas=12, seed=2)
    result = run(config, progress=False)
    assert 0 < result.theory["state_dependence"] < 0.07 and result.theory["zero_modes_projected"] == 8
    assert directions_agreeing(result, ("W1", "W2", "W3")) >= 5


@pytest.mark.parametrize("momentum", [0.0, 0.6])
def test_synthetic_windows_have_the_predicted_covariance(data, momentum):
    """The AR(1) chain of snapshots is stationary with exactly the discrete covariance (§3b), and the PCA
    of long windows of it recovers the eigenvalues within its standard errors (no bias left)."""
    from sgdnoise.theory.pca_window import window_bias, window_samples

    X, Y = data
    net = LinearNetwork.build(6, 4, 2, 2)
    w = balanced_minimum(net, X, Y)
    H, G, T = net.hessian(w, X, Y), net.per_example_gradients(w, X, Y), net.symmetry_generators(w)
    lin = linearised_covariance(H, G, 0.1, momentum, "with-replacement", 5, T)
    samples, exact = window_samples(H, lin.noise, 0.1, momentum, T, 5, 4000, 8, seed=1)
    np.testing.assert_allclose(exact, lin.covariance["discrete"], atol=1e-12 * np.abs(exact).max())
    assert samples.shape == (8, 4000, net.dim) and np.abs(samples @ T).max() < 1e-12
    b = window_bias(samples, exact, net.layer_slice(0))
    assert np.all(np.abs(b["bias"]) < 4 * b["bias_stderr"] + 0.02), b
    short = window_bias(window_samples(H, lin.noise, 0.1, momentum, T, 1, 60, 8, seed=1)[0], exact,
                        net.layer_slice(0))
    assert short["bias"][-1] < -0.2  # 60 correlated snapshots: the smallest variance comes out far too small


def test_two_layer_structure_tells_bottleneck_from_none(data):
    from sgdnoise.theory.linear_networks import two_layer_structure

    X, Y = data
    for hidden, bottleneck in ((2, True), (4, False)):
        net = LinearNetwork.build(6, 4, hidden, 2)
        w = balanced_minimum(net, X, Y)
        H, G, T = net.hessian(w, X, Y), net.per_example_gradients(w, X, Y), net.symmetry_generators(w)
        lin = linearised_covariance(H, G, 0.1, 0.0, "with-replacement", 5, T)
        s = two_layer_structure(*net.unflatten(w), H, lin.noise, lin.covariance["discrete"], T, 4)
        assert s["bottleneck"] is bottleneck and s["curvature_span"] >= 1 and 0 <= s["noise_hessian_deviation"] < 1
        assert ("outside_column_space" in s) is bottleneck and isinstance(s["reading"], str)
        if bottleneck:
            assert s["outside_column_space"] > 1  # the teacher's discarded components add noise there
