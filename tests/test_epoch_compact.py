"""The compact epoch closure (theory/epoch_compact.py, docs/theory.md §3k).

Checked against the literal closure of §3g (tests/epoch_closure_dense.py's structured twin,
``ClosureEpoch``) with every D_mu projected onto the Hadamard ansatz after each step, against
the exact epoch reference (§3f) and against simulation.
"""
import numpy as np
import pytest

from sgdnoise.errors import UsageError
from sgdnoise.theory.epoch_closure import ClosureEpoch, closure_moments
from sgdnoise.theory.epoch_compact import BlockCompactEpoch, CompactEpoch, compact_closure_moments
from sgdnoise.theory.epoch_exact import epoch_exact_moments
from test_epoch_theory import _eig_problem


class ProjectedClosure(ClosureEpoch):
    """The §3g closure with D_mu = g_mu o W before each step and the new D_mu projected after it.

    T(D_mu) is the self term plus the Wick value of the other examples (docs/theory.md §3k), formed
    densely here; the projection is the per-entry least-squares fit over the examples.
    """

    def __init__(self, Z, r, lam, lr, beta, S):
        super().__init__(Z, r, lam, lr, beta, S)
        zeta = np.concatenate([Z, Z, r[:, None]], 1)
        g = zeta[:, :, None] * zeta[:, None, :]
        self.g = g - g.mean(0)
        norm = (self.g ** 2).sum(0)
        self.inv = np.divide(1.0, norm, out=np.zeros_like(norm), where=norm > 1e-14 * norm.max())
        self.sig2 = np.mean(r ** 2)

    def T_stack(self, Dm):
        n, P, lam = self.n, self.P, self.lh
        sd = np.einsum("pd,pde,pe->p", self.rho, Dm, self.rho)
        out = sd[:, None, None] * self.Z[:, :, None] * self.Z[:, None, :]
        t = np.einsum("pii,i->p", Dm[:, :n, :n], lam) + self.sig2 * Dm[:, -1, -1]
        out += 2 * (P - 1) * self.lam2 * Dm[:, :n, :n]
        out[:, np.arange(n), np.arange(n)] += (P - 1) * lam * t[:, None]
        return out

    def step_w(self, j, m, W):
        m_new, D_new = self.step(j, m, None if W is None else self.g * W)
        return m_new, (D_new * self.g).sum(0) * self.inv


def _random_state(D, seed=0):
    rng = np.random.default_rng(seed)
    L = rng.normal(size=(D, D))
    m = L @ L.T * 1e-2
    m[-1, -1] = 1.0
    W = rng.normal(size=(D, D)) * 1e-2
    return m, W + W.T


@pytest.mark.parametrize("N, P, S, beta", [(5, 10, 2, 0.5), (6, 24, 4, 0.0), (4, 30, 3, 0.8)])
def test_compact_step_equals_the_projected_dense_closure(N, P, S, beta):
    # Every algebraic step of the compact form (rank-one projections by GEMM, gbar parts, the
    # Hadamard-exact propagation and Wick terms) gives the dense projected closure to round-off.
    _, _, Z, lam, _, r = _eig_problem(N, P, 1)
    lr = 0.3 / lam.max()
    dense, compact = ProjectedClosure(Z, r, lam, lr, beta, S), CompactEpoch(Z, r, lam, lr, beta, S)
    m, W = _random_state(compact.D)
    for j, w in [(0, None), (1, W), (P // S - 2, W)]:
        m_d, W_d = dense.step_w(j, m, w)
        m_c, W_c = compact.step(j, m, w)
        np.testing.assert_allclose(m_c, m_d, rtol=0, atol=1e-13 * np.abs(m_d).max())
        np.testing.assert_allclose(W_c, W_d, rtol=0, atol=1e-13 * np.abs(W_d).max())


def test_first_step_of_an_epoch_is_the_closures():
    # From D = 0 the moment after one step is the closure's (exact, tests/test_epoch_theory.py),
    # and W is the least-squares fit of the closure's D_1 over the examples.
    _, _, Z, lam, _, r = _eig_problem(5, 20, 2)
    lr = 0.4 / lam.max()
    closure, compact = ClosureEpoch(Z, r, lam, lr, 0.5, 4), CompactEpoch(Z, r, lam, lr, 0.5, 4)
    m, _ = _random_state(compact.D, 1)
    m1, D1 = closure.step(0, m, None)
    m1c, W1 = compact.step(0, m, None)
    np.testing.assert_allclose(m1c, m1, rtol=0, atol=1e-14 * np.abs(m1).max())
    g = ProjectedClosure(Z, r, lam, lr, 0.5, 4).g
    for a, b in [(0, 0), (1, 3), (0, compact.D - 1), (2, compact.n + 2)]:
        fit = np.linalg.lstsq(g[:, a, b, None], D1[:, a, b], rcond=None)[0][0] if np.any(g[:, a, b]) else 0.0
        assert W1[a, b] == pytest.approx(fit, rel=1e-10, abs=1e-14 * np.abs(W1).max())


def test_propagation_keeps_the_hadamard_form():
    # A (g_mu o W) A^T = g_mu o (A W A^T) for every example: A mixes only the two copies of one
    # eigendirection, which carry the same factor z_mu,i.
    _, _, Z, lam, _, r = _eig_problem(4, 12, 0)
    ep = CompactEpoch(Z, r, lam, 0.3 / lam.max(), 0.7, 3)
    g = ProjectedClosure(Z, r, lam, 0.3 / lam.max(), 0.7, 3).g
    _, W = _random_state(ep.D, 2)
    left = ep.A_left(ep.A_left(g * W).transpose(0, 2, 1))
    np.testing.assert_allclose(left, g * ep.A_left(ep.A_left(W).T), atol=1e-15)
    u = np.einsum("pde,pe->pd", g * W, ep.rho)
    np.testing.assert_allclose(ep.apply_d(W), u, atol=1e-14 * np.abs(u).max())


@pytest.mark.parametrize("N, P, S, beta", [(5, 10, 2, 0.5), (6, 24, 4, 0.0)])
def test_block_diagonal_step_is_the_masked_compact_step(N, P, S, beta):
    # The O(P N) m-step of BlockCompactEpoch is the full compact m-step from a block-diagonal m
    # with the couplings between directions dropped afterwards; W is unchanged.
    _, _, Z, lam, _, r = _eig_problem(N, P, 1)
    lr = 0.3 / lam.max()
    full, block = CompactEpoch(Z, r, lam, lr, beta, S), BlockCompactEpoch(Z, r, lam, lr, beta, S)
    m, W = _random_state(full.D, 3)
    m = m * block.mask
    np.testing.assert_allclose(block.m_rho(m), full.m_rho(m), atol=1e-15)
    for j, w in [(0, None), (1, W), (P // S - 2, W)]:
        m_f, W_f = full.step(j, m, w)
        m_b, W_b = block.step(j, m, w)
        np.testing.assert_allclose(m_b, m_f * block.mask, rtol=0, atol=1e-14 * np.abs(m_b).max())
        np.testing.assert_allclose(W_b, W_f, rtol=0, atol=1e-14 * np.abs(W_b).max())


@pytest.mark.parametrize("N, P, S, beta", [(8, 12, 3, 0.0), (8, 12, 3, 0.6)])
def test_error_against_the_exact_reference_is_first_order_in_lr(N, P, S, beta):
    # Like the §3g closure the compact form is exact at lr -> 0 to first order: shrinking lr by 3
    # shrinks the trace error by more than 2, and it is never larger than the closure's.
    X, y, _, lam, _, _ = _eig_problem(N, P, 1)
    errors = []
    for f in (0.1, 0.1 / 3):
        lr = f * (1 - beta) / lam.max()
        exact = epoch_exact_moments(X, y, lr, S, beta)
        compact = compact_closure_moments(X, y, lr, S, beta, rtol=1e-9)
        closure = closure_moments(X, y, lr, S, beta)
        errors.append(abs(compact.var_theta.sum() / exact.var_theta.sum() - 1))
        assert errors[-1] <= abs(closure.var_theta.sum() / exact.var_theta.sum() - 1)
    assert errors[1] < errors[0] / 2


def test_output_shapes_and_conventions():
    X, y, _, lam, _, _ = _eig_problem(6, 24, 0)
    t = compact_closure_moments(X, y, 0.2 / lam.max(), 4, 0.5)
    assert t.var_theta.shape == t.var_v.shape == (6,)
    assert np.all(np.diff(t.hessian_eigenvalues) >= 0)
    assert np.all(t.var_theta > 0) and np.all(t.var_v > 0)
    assert t.covariance.shape == (6, 6) and t.position_var_theta.shape == (6, 6)
    assert t.residual < 1e-3


@pytest.mark.parametrize("kwargs, name", [
    (dict(lr=-1.0), "lr"), (dict(batch_size=0), "batch_size"), (dict(batch_size=20), "batch_size"),
    (dict(momentum=1.0), "momentum"),
])
def test_bad_arguments_are_named(kwargs, name):
    X, y, _, _, _, _ = _eig_problem(4, 24, 0)
    args = dict(lr=0.1, batch_size=4, momentum=0.0) | kwargs
    with pytest.raises(UsageError, match=name):
        compact_closure_moments(X, y, **args)


def _isotropic(N, P, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(scale=np.sqrt(1 / N), size=(P, N))
    return X, X @ rng.normal(size=N) + 0.5 * rng.normal(size=P)


def test_default_tolerance_converges_every_direction():
    # On isotropic data the flattest directions' entries are small in the residual's norm: rtol 1e-5
    # stopped GMRES with 0.6 % left there (measured 5.7e-3 here). The default (1e-6) must give every
    # direction's Var theta and Var v to 1e-4 of a solve at rtol 1e-10.
    X, y = _isotropic(30, 60)
    tight = compact_closure_moments(X, y, 0.1, 10, rtol=1e-10)
    default = compact_closure_moments(X, y, 0.1, 10)
    np.testing.assert_allclose(default.var_theta, tight.var_theta, rtol=1e-4)
    np.testing.assert_allclose(default.var_v, tight.var_v, rtol=1e-4)


@pytest.mark.parametrize("beta", [0.0, 0.6])
def test_fixed_point_moments_from_the_gmres_passes_equal_a_recorded_pass(beta, monkeypatch):
    # solve_epoch_map takes the epoch end and the position sums at the solution as the combination of
    # the passes GMRES made (they are linear in the epoch start); a pass of its own must give the same.
    import sgdnoise.theory.epoch_closure as closure
    X, y = _isotropic(12, 48)
    combined = compact_closure_moments(X, y, 0.2, 4, beta)
    monkeypatch.setattr(closure, "_at_combination", lambda passes, m0: None)
    recorded = compact_closure_moments(X, y, 0.2, 4, beta)
    for name in ("var_theta", "var_v", "mean", "var_theta_start", "position_mean", "position_var_theta"):
        a, b = getattr(combined, name), getattr(recorded, name)
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10 * np.abs(b).max(), err_msg=name)
    assert recorded.residual == pytest.approx(combined.residual, rel=1e-6, abs=1e-12)


@pytest.mark.parametrize("start_correction", [False, True])
def test_interpolation_and_rank_deficient_data(start_correction):
    # P < N: w* interpolates the data, there is no noise at w*, and the stationary state is w* (the
    # closure's solve divided 0 by 0 and called it unstable). A duplicated feature: H has a null
    # direction (lam = 0 first in ascending order), which stays at zero variance.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 30)) / np.sqrt(30)
    y = X @ rng.normal(size=30) + 0.5 * rng.normal(size=20)
    m = compact_closure_moments(X, y, 0.1, 2, 0.0, start_correction=start_correction)
    assert m.var_theta.shape == (30,) and np.all(m.covariance == 0) and m.residual == 0
    X = rng.normal(size=(40, 5))
    X = np.c_[X, X[:, 0]]
    y = X @ rng.normal(size=6) + 0.5 * rng.normal(size=40)
    m = compact_closure_moments(X, y, 0.05, 4, 0.3, start_correction=start_correction)
    assert m.var_theta.shape == (6,) and abs(m.var_theta[0]) < 1e-12 * m.var_theta.max()
    assert np.all(m.var_theta[1:] > 0) and np.allclose(np.diag(m.covariance).sum(), m.var_theta.sum())


def test_dropped_examples_error_is_first_order_in_lr():
    # S not dividing P: each epoch drops P - M S examples (drop_last), whose first-order kick the
    # closure holds exactly; method epoch skips the §3h start correction (which needs every example
    # used once) and its error against the exact reference (§3f) is first order in lr.
    X, y, _, lam, _, _ = _eig_problem(6, 14, 1)
    errors = []
    for f in (0.3, 0.1):
        lr = f / lam.max()
        exact = epoch_exact_moments(X, y, lr, 3, 0.0)
        epoch = compact_closure_moments(X, y, lr, 3, 0.0, rtol=1e-10, start_correction=True)
        plain = compact_closure_moments(X, y, lr, 3, 0.0, rtol=1e-10)
        np.testing.assert_array_equal(epoch.var_theta, plain.var_theta)
        errors.append(np.abs(epoch.var_theta / exact.var_theta - 1).max())
    assert errors[1] < errors[0] / 2
