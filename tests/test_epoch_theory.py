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
