"""The compact closure with Gaussian data moments (theory/epoch_gaussian.py, docs/theory.md §3l).

The algebra is proven by the limit P -> infinity: on data whose eigenbasis moments are Gaussian
up to sampling error, the Gaussian step must approach the compact step of §3k (which forms the
same sums from the examples) like 1/sqrt(P).
"""
import numpy as np
import pytest

from sgdnoise.errors import UsageError
from sgdnoise.theory.epoch_closure import _residuals, _sorted_basis
from sgdnoise.theory.epoch_compact import CompactEpoch
from sgdnoise.theory.epoch_gaussian import GaussianCompactEpoch, gaussian_closure_moments
from sgdnoise.theory.epoch_weights import step_weights
from test_epoch_theory import _eig_problem

#: Relative standard deviation of z^8 for a Gaussian z: sqrt(E z^16 / (E z^8)^2 - 1) = sqrt(15!! ^ 2 ... ),
#: 15!! = 2027025 and 7!! = 105; the noisiest per-example polynomial a step sums (8th order).
SD_Z8 = float(np.sqrt(2027025 / 105 ** 2 - 1))  # 13.5


def _epochs(P, beta, lr=0.3, S=4, seed=0):
    """Compact and Gaussian epochs on x ~ N(0, diag(s)) (distinct s), y = x . u + noise, N = 3."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(P, 3)) * np.sqrt([0.5, 1.2, 2.0])
    y = X @ rng.normal(size=3) + 0.7 * rng.normal(size=P)
    basis, order = _sorted_basis(X, y, lr, beta)  # the sum rules Z^T Z = P Lam, Z^T r = 0 hold exactly
    Z, r, lam = basis.Z[:, order], _residuals(basis, order, y), basis.lam[order]
    return (CompactEpoch(Z, r, lam, lr, beta, S),
            GaussianCompactEpoch(lam, np.mean(r ** 2), np.mean(r ** 4), lr, beta, S, P))


def _state(D, seed=0):
    rng = np.random.default_rng(seed)
    L = rng.normal(size=(D, D))
    m = L @ L.T * 1e-1
    m[-1, -1] = 1.0
    W = rng.normal(size=(D, D)) * 1e-1
    return m, W + W.T


def _blocks(n):
    one, two, c = slice(0, n), slice(n, 2 * n), slice(2 * n, 2 * n + 1)
    return [(one, one), (two, one), (two, two), (one, c), (two, c), (c, c)]


def _differences(compact, gauss):
    """Per position j in (0, 1, M - 2): the difference of the steps, relative to the compact step's
    data-dependent part (the step less the exact full-batch propagation), for m and W, and per block."""
    m, W = _state(compact.D)
    out = []
    for j, w in [(0, None), (1, W), (compact.M - 2, W)]:
        mc, Wc = compact.step(j, m, w)
        mg, Wg = gauss.step(j, m, w)
        src_m = np.linalg.norm(mc - compact.A_sandwich(m))
        src_W = np.linalg.norm(Wc - (0 if w is None else step_weights(compact.P, compact.S, j)["w"]
                                     * compact.A_sandwich(W)))
        blocks = [np.linalg.norm((mg - mc)[b]) / src_m for b in _blocks(compact.n)]
        blocks += [np.linalg.norm((Wg - Wc)[b]) / src_W for b in _blocks(compact.n)]
        out.append((np.linalg.norm(mg - mc) / src_m, np.linalg.norm(Wg - Wc) / src_W, max(blocks)))
    return np.array(out)


@pytest.mark.parametrize("beta", [0.0, 0.6])
def test_gaussian_step_is_the_compact_step_for_infinitely_many_gaussian_examples(beta):
    # Every sum over examples of the compact step, formed from Gaussian data, differs from its
    # Gaussian value by sampling error ~ 1/sqrt(P): the difference of the steps must shrink by
    # about sqrt(10) from P = 40k to 400k (at least 2 asserted, over the three positions) and stay
    # below 4 standard errors of the noisiest moment summed (z^8, relative s.d. SD_Z8 / sqrt(P))
    # in every block. A wrong Wick coefficient leaves an error that does not shrink with P.
    small = _differences(*_epochs(40_000, beta))
    large = _differences(*_epochs(400_000, beta))
    for P, diff in [(40_000, small), (400_000, large)]:
        assert diff.max() < 4 * SD_Z8 / np.sqrt(P), (P, diff)
    ratio = small.max(0) / large.max(0)  # m, W, the worst block
    assert np.all(ratio > 2), (ratio, small, large)


def test_the_epoch_start_and_a_zero_state_are_handled():
    # W = None (epoch start, all D_mu = 0) is the same as W = 0, and with no noise (r = 0) and
    # m = corner the step keeps the minimum: nothing moves.
    compact, gauss = _epochs(1000, 0.3)
    m, W = _state(gauss.D, 1)
    for a, b in zip(gauss.step(0, m, None), gauss.step(0, m, np.zeros_like(W))):
        np.testing.assert_array_equal(a, b)
    quiet = GaussianCompactEpoch(gauss.lam, 0.0, 0.0, 0.3, 0.3, 4, 1000)
    corner = np.zeros_like(m)
    corner[-1, -1] = 1.0
    m1, W1 = quiet.step(3, corner, np.zeros_like(W))
    np.testing.assert_array_equal(m1, corner)
    assert not np.any(W1)


def test_output_shapes_and_conventions():
    X, y, _, lam, _, _ = _eig_problem(6, 24, 0)
    t = gaussian_closure_moments(X, y, 0.2 / lam.max(), 4, 0.5)
    assert t.var_theta.shape == t.var_v.shape == (6,)
    assert np.all(np.diff(t.hessian_eigenvalues) >= 0)
    assert np.all(t.var_theta > 0) and np.all(t.var_v > 0)
    assert t.covariance.shape == (6, 6) and t.position_var_theta.shape == (6, 6)
    assert t.residual < 1e-4


@pytest.mark.parametrize("kwargs, name", [
    (dict(lr=-1.0), "lr"), (dict(batch_size=0), "batch_size"), (dict(batch_size=20), "batch_size"),
    (dict(momentum=1.0), "momentum"), (dict(lr=50.0), "lr"),
])
def test_bad_arguments_are_named(kwargs, name):
    X, y, _, _, _, _ = _eig_problem(4, 24, 0)
    args = dict(lr=0.1, batch_size=4, momentum=0.0) | kwargs
    with pytest.raises(UsageError, match=name):
        gaussian_closure_moments(X, y, **args)
