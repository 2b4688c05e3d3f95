"""Method ``epoch`` (theory/epoch.py) against the exact epoch reference and against simulation."""
import numpy as np
import pytest

from sgdnoise.errors import UsageError
from sgdnoise.problems.linear import LinearRegression
from sgdnoise.theory import stationary_covariance
from sgdnoise.theory.epoch import epoch_stationary_moments
from sgdnoise.theory.epoch_exact import epoch_exact_moments


def _problem(N, P, seed):
    pr = LinearRegression.teacher_student(N, P, 0.25, seed=seed)
    return pr.X, pr.Y[:, 0], pr.hessian_eigenvalues.max()


@pytest.mark.slow
@pytest.mark.parametrize("N, P, S, beta, seed", [(8, 12, 3, 0.0, 1), (8, 12, 3, 0.6, 1)])
def test_trace_error_is_first_order_in_lr(N, P, S, beta, seed):
    # The method is exact for the residual noise and leaves out the usage correlation of the
    # state-dependent kicks: the relative trace error must scale like lr.  Shrinking lr by 3
    # shrinks the error by 3 up to higher orders; allowed: a factor 3 / 1.5 = 2 at least.
    X, y, lmax = _problem(N, P, seed)
    errors = []
    for f in (0.09, 0.03):
        exact = epoch_exact_moments(X, y, f / lmax, S, beta)
        theory = epoch_stationary_moments(X, y, f / lmax, S, beta)
        errors.append(abs(theory.var_theta.sum() / exact.var_theta.sum() - 1))
    assert errors[1] < errors[0] / 2
    assert errors[1] < 0.05


@pytest.mark.slow
def test_closer_to_exact_than_anticorrelated():
    X, y, lmax = _problem(8, 12, 1)
    lr = 0.3 / lmax
    exact = epoch_exact_moments(X, y, lr, 3)
    theory = epoch_stationary_moments(X, y, lr, 3)
    lam, V = np.linalg.eigh(X.T @ X / len(X))
    ac = np.einsum("ij,jk,ik->i", V.T, stationary_covariance(X, y, lr, 3, sampling="epoch",
                                                             method="anticorrelated"), V.T)
    e_th = abs(theory.var_theta.sum() / exact.var_theta.sum() - 1)
    e_ac = abs(ac.sum() / exact.var_theta.sum() - 1)
    assert e_th < e_ac / 2


def test_output_shapes_and_order():
    X, y, lmax = _problem(6, 24, 0)
    t = epoch_stationary_moments(X, y, 0.2 / lmax, 4, 0.5)
    assert t.var_theta.shape == t.var_v.shape == t.tau.shape == (6,)
    assert np.all(np.diff(t.hessian_eigenvalues) >= 0)
    assert np.all(t.var_theta > 0) and np.all(t.var_v > 0)
    np.testing.assert_allclose(t.tau, 2 * t.var_theta / t.var_v)
    assert t.residual < 1e-8


@pytest.mark.parametrize("kwargs, name", [
    (dict(lr=-1.0), "lr"), (dict(batch_size=0), "batch_size"), (dict(batch_size=20), "batch_size"),
    (dict(momentum=1.0), "momentum"),
])
def test_bad_arguments_are_named(kwargs, name):
    X, y, _ = _problem(4, 24, 0)
    args = dict(lr=0.1, batch_size=4, momentum=0.0) | kwargs
    with pytest.raises(UsageError, match=name):
        epoch_stationary_moments(X, y, **args)


# --- usage-correlation closure (theory/epoch_closure.py) ------------------------------------

def _eig_problem(N, P, seed):
    from sgdnoise.theory.regression_basis import _eigenbasis
    pr = LinearRegression.teacher_student(N, P, 0.25, seed=seed)
    X, y = pr.X, pr.Y[:, 0]
    b = _eigenbasis(X, y.reshape(P, 1))
    o = np.argsort(b.lam)
    Z, lam = b.Z[:, o], b.lam[o]
    return X, y, Z, lam, b.V[:, o], (Z @ b.w[o])[:, 0] - y


def test_closure_first_step_reproduces_exact_used_set_moments():
    # At p = 0 no closure enters: the moment and every D_mu = E[(n_mu - p) x~x~^T] after one
    # step must equal the exact used-set recursion (theory/epoch_exact.py) to round-off,
    # from an arbitrary (non-stationary) epoch-start moment with a mean.
    from sgdnoise.theory.epoch_closure import ClosureEpoch
    from sgdnoise.theory.epoch_exact import _EpochMap
    N, P, S, beta = 5, 10, 2, 0.5
    _, _, Z, lam, _, r = _eig_problem(N, P, 2)
    lr = 0.3 / lam.max()
    em, ce = _EpochMap(Z, r, lr, beta, S), ClosureEpoch(Z, r, lam, lr, beta, S)
    D = em.D
    rng = np.random.default_rng(0)
    L = rng.normal(size=(D, D))
    m0 = L @ L.T * 1e-2
    m0[-1, :-1] = m0[:-1, -1] = rng.normal(size=D - 1) * 0.05
    m0[-1, -1] = 1.0
    ms = em.step(0, m0[None])
    ind = np.zeros((ms.shape[0], P))
    ind[np.arange(ms.shape[0])[:, None], em.layers[0].targets] = 1
    D1 = np.einsum("up,ude->pde", ind - S / P, ms)
    m1c, D1c = ce.step(0, m0, None)
    np.testing.assert_allclose(m1c, ms.sum(0), rtol=0, atol=1e-13 * np.abs(m0).max())
    np.testing.assert_allclose(D1c, D1, rtol=0, atol=1e-13 * np.abs(D1).max())


@pytest.mark.parametrize("S", [4, 1])
def test_closure_is_exact_for_additive_noise(S):
    # With additive kicks (K_mu acting on the constant only) the closure is exact: the time-
    # averaged covariance equals the anticorrelated solution (docs/theory.md §3e) to round-off.
    # S = 1 passes through R = 2 remaining examples, where a batch has no other members.
    from sgdnoise.theory.epoch_closure import ClosureEpoch
    N, P = 6, 24
    X, y, Z, lam, V, r = _eig_problem(N, P, 0)
    lr = 0.5 / lam.max()
    ep = ClosureEpoch(Z, r, lam, lr, 0.0, S)
    ep.set_kicks(ep.Z, np.pad(ep.rho[:, -1:], ((0, 0), (ep.D - 1, 0))), 0 * lam)
    m = np.zeros((ep.D, ep.D))
    m[-1, -1] = 1
    for _ in range(3000):  # slowest contraction (1 - lr lam_min)^M per epoch
        pos = []
        m = ep.epoch(m, visit=pos.append)
    mbar = np.mean(pos, axis=0)
    cov = mbar[:N, :N] - np.outer(mbar[:N, -1], mbar[:N, -1])
    ac = V.T @ stationary_covariance(X, y, lr, S, sampling="epoch", method="anticorrelated") @ V
    np.testing.assert_allclose(np.diag(cov), np.diag(ac), rtol=1e-10)


@pytest.mark.parametrize("N, P, S, beta, f", [(5, 10, 2, 0.5, 0.3), (6, 24, 4, 0.0, 0.5), (4, 30, 3, 0.8, 0.2)])
def test_fast_closure_equals_the_dense_derivation(N, P, S, beta, f):
    # The structured closure (rank-one kicks, packed T(D), common terms projected out by the sum
    # rule) gives the numbers of the literal dense one, step by step and at the fixed point.
    from epoch_closure_dense import ClosureEpoch as Dense, dense_closure_moments
    from sgdnoise.theory.epoch_closure import ClosureEpoch, closure_moments
    X, y, Z, lam, _, r = _eig_problem(N, P, 1)
    lr = f / lam.max()
    fast, dense = ClosureEpoch(Z, r, lam, lr, beta, S), Dense(Z, r, lam, lr, beta, S)
    rng = np.random.default_rng(0)
    L = rng.normal(size=(fast.D, fast.D))
    m = L @ L.T * 1e-2
    m[-1, -1] = 1.0
    Dm = rng.normal(size=(P, fast.D, fast.D)) * 1e-3
    Dm = Dm + Dm.transpose(0, 2, 1)
    Dm -= Dm.mean(0)
    for j in (1, P // S - 2):
        (mf, Df), (md, Dd) = fast.step(j, m, Dm), dense.step(j, m, Dm)
        np.testing.assert_allclose(mf, md, rtol=0, atol=1e-12 * np.abs(md).max())
        np.testing.assert_allclose(Df, Dd, rtol=0, atol=1e-12 * np.abs(Dd).max())
    a, b = closure_moments(X, y, lr, S, beta), dense_closure_moments(X, y, lr, S, beta)
    np.testing.assert_allclose(a.var_theta, b.var_theta, rtol=1e-8)
    np.testing.assert_allclose(a.var_v, b.var_v, rtol=1e-8)
    np.testing.assert_allclose(a.mean, b.mean, rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("N, P, S, beta", [(8, 12, 3, 0.0), (8, 12, 3, 0.6), (3, 8, 1, 0.0)])
def test_closure_error_is_first_order_in_lr_in_every_direction(N, P, S, beta):
    # The order the closure claims (docs/theory.md §3g, "Where the error is"): within an epoch it
    # is exact at leading order, and the epoch-start covariance it gets wrong by O(1) in the flat
    # directions carries a weight O(lr) of the time average.  So every direction's relative error
    # of Var theta, and the trace's, must shrink like lr: by 3 from lr lam_max = 0.03 to 0.01 up
    # to higher orders; required: at least 2 (measured 2.7-2.9).  N = 8, P = 12 (P/N = 1.5) is
    # where the flat directions are worst (errors 16-28 % at 0.03).  S = 1: a batch of one, whose
    # last step has one example left (the closure was wrong there by O(1/lr) before 2026-11-28).
    from sgdnoise.theory.epoch_closure import closure_moments
    X, y, lmax = _problem(N, P, 1)
    errors = []
    for f in (0.03, 0.01):
        exact = epoch_exact_moments(X, y, f / lmax, S, beta)
        closure = closure_moments(X, y, f / lmax, S, beta)
        errors.append(np.append(np.abs(closure.var_theta / exact.var_theta - 1),
                                abs(closure.var_theta.sum() / exact.var_theta.sum() - 1)))
    assert np.all(errors[1] < errors[0] / 2)


@pytest.mark.slow
def test_closures_meet_issue_targets_on_the_small_case():
    # Issue 10, small case (N = 10, P = 40, S = 4, lr = 2, beta = 0), one long simulation for both
    # closures.  The §3g closure: trace within 5 %, every direction within 10 % (the issue's targets,
    # not fitted).  The compact closure (§3k), without and with the start correction of §3h (method
    # epoch): the same targets, each widened by 4 standard errors of the simulation (measured: trace
    # -3.2 %, directions -0.4 ... -5.8 %; corrected -3.4 %, within 6.8 %).
    from sgdnoise.dynamics.simulator import SimulationConfig, simulate
    from sgdnoise.theory.epoch_closure import closure_moments
    from sgdnoise.theory.epoch_compact import compact_closure_moments
    pr = LinearRegression.teacher_student(10, 40, 0.25, seed=0)
    sim = simulate(pr, SimulationConfig(lr=2.0, batch_size=4, momentum=0.0, sampling="epoch", steps=100_000,
                                        burn_in=5_000, replicas=16, seed=1), progress=False)
    assert np.all(sim.equilibrated)
    v, se = sim.var_theta.value, sim.var_theta.stderr
    th = closure_moments(pr.X, pr.Y[:, 0], 2.0, 4, 0.0)
    assert abs(th.var_theta.sum() / v.sum() - 1) < 0.05
    assert np.max(np.abs(th.var_theta / v - 1)) < 0.10
    for start_correction in (False, True):  # True: method epoch (§3h's slow-direction start; -3.4 %, within 6.8 %)
        th = compact_closure_moments(pr.X, pr.Y[:, 0], 2.0, 4, 0.0, start_correction=start_correction)
        assert abs(th.var_theta.sum() / v.sum() - 1) < 0.05 + 4 * np.sqrt((se ** 2).sum()) / v.sum()
        assert np.all(np.abs(th.var_theta / v - 1) < 0.10 + 4 * se / v)


def test_stationary_covariance_method_epoch_is_the_compact_closure():
    # The public entry point (name, arguments, return shape) used by `sgdnoise linear` and the map.
    from sgdnoise.theory.epoch_compact import compact_closure_moments

    X, y, lmax = _problem(5, 20, 2)
    sigma = stationary_covariance(X, y, 0.3 / lmax, 4, 0.5, sampling="epoch", method="epoch")
    assert sigma.shape == (5, 5)
    np.testing.assert_allclose(sigma, compact_closure_moments(X, y, 0.3 / lmax, 4, 0.5, start_correction=True).covariance,
                               rtol=1e-12)
    np.testing.assert_allclose(stationary_covariance(X, y[:, None], 0.3 / lmax, 4, 0.5, "epoch", "epoch"), sigma)
    for kwargs in (dict(sampling="with-replacement"), dict(sampling="epoch", y=np.c_[y, y])):
        args = dict(X=X, y=y, lr=0.1, batch_size=4, method="epoch") | kwargs
        with pytest.raises(UsageError, match="method='epoch'"):
            stationary_covariance(**args)
