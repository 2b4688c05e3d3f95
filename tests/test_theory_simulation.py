"""Each theory against simulation where it is exact, within 4 standard errors (docs/theory.md §3b-§3e).

Standard errors come from independent replicas of the simulator.  Each test
also asserts that an approximation which should fail does fail by many
standard errors, so that passing is not a matter of loose tolerances.
"""
import numpy as np
import pytest

from sgdnoise.dynamics.simulator import SimulationConfig, simulate
from sgdnoise.problems.linear import AdditiveNoiseQuadratic, LinearRegression
from sgdnoise.theory import (
    batch_noise_factor,
    kuehn_rosenow,
    per_example_covariance,
    quadratic_stationary_covariance,
    stationary_covariance,
)

from conftest import max_abs_z

pytestmark = pytest.mark.slow


def eigen_diag(problem, sigma):
    V = problem.eigenbasis_matrix()
    return np.einsum("ij,ik,kj->j", V, sigma, V)


@pytest.mark.parametrize("N,P,lr,S,momentum,sampling", [
    (10, 30, 0.5, 5, 0.0, "with-replacement"),
    (10, 30, 0.5, 5, 0.0, "random-batch"),
    (6, 15, 0.3, 3, 0.6, "with-replacement"),
])
def test_exact_finite_lr_moments_match_simulation_where_continuum_fails(N, P, lr, S, momentum, sampling):
    problem = LinearRegression.teacher_student(N, P, 0.25, seed=3)
    config = SimulationConfig(lr=lr, batch_size=S, momentum=momentum, sampling=sampling,
                              steps=150_000, burn_in=5_000, replicas=32, seed=4)
    res = simulate(problem, config, progress=False)
    assert res.equilibrated.all()
    sigma = {m: stationary_covariance(problem.X, problem.Y, lr, S, momentum, sampling, method=m)
             for m in ("exact", "continuum")}
    exact = eigen_diag(problem, sigma["exact"])
    assert max_abs_z(res.var_theta.value, exact, res.var_theta.stderr) < 4
    trace = res.var_theta_trace
    assert abs(np.trace(sigma["exact"]) - trace.value) < 4 * trace.stderr
    # the continuum solution is measurably off at this learning rate
    assert abs(np.trace(sigma["continuum"]) - trace.value) > 8 * trace.stderr


def additive_problem(seed, correlated=False):
    lam = np.array([0.002, 0.01, 0.05, 0.2, 0.6, 1.5])
    rng = np.random.default_rng(seed)
    mixing = np.eye(6) + (0.6 * rng.normal(size=(6, 6)) if correlated else 0)
    offsets = rng.normal(size=(200, 6)) @ mixing.T / np.sqrt(lam)
    return AdditiveNoiseQuadratic(lam, offsets, {"kind": "test"})


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_kuehn_rosenow_closed_form_matches_epoch_simulation(momentum):
    """Additive per-example noise, epoch sampling: the closed form is exact for the time average.

    var_theta, var_v and tau, within 4 standard errors in every direction; the
    with-replacement formula (M = 1) is rejected below lambda_cross.
    """
    problem = additive_problem(1)
    lr, S = 0.5, 20
    M = problem.n_examples // S
    config = SimulationConfig(lr=lr, batch_size=S, momentum=momentum, sampling="epoch",
                              steps=200_000, burn_in=20_000, replicas=32, seed=5)
    res = simulate(problem, config, progress=False)
    C = batch_noise_factor("epoch", problem.n_examples, S) * per_example_covariance(problem.per_example_gradients())
    kr = kuehn_rosenow(problem.eigenvalues, np.diag(C), lr, momentum, M)
    assert max_abs_z(res.var_theta.value, kr.var_theta, res.var_theta.stderr) < 4
    assert max_abs_z(res.var_v.value, kr.var_v, res.var_v.stderr) < 4
    assert max_abs_z(res.tau.value, kr.tau, res.tau.stderr) < 4
    uncorrelated = kuehn_rosenow(problem.eigenvalues, np.diag(C), lr, momentum, 1)
    assert max_abs_z(res.var_theta.value, uncorrelated.var_theta, res.var_theta.stderr) > 20


def test_anticorrelated_solution_matches_simulation_when_H_and_C_do_not_commute():
    """Correlated offsets make C = f H cov(a) H non-diagonal in the eigenbasis of H.

    The variance along the eigenvectors of C (directions that mix the Hessian
    eigendirections, so they see the off-diagonal entries of the covariance) is
    measured from snapshots taken every 7 steps (coprime to the epoch length, so
    every position in the epoch is sampled alike), with standard errors across
    replicas.
    """
    problem = additive_problem(2, correlated=True)
    lr, S, momentum = 0.5, 20, 0.5
    M = problem.n_examples // S
    C = batch_noise_factor("epoch", problem.n_examples, S) * per_example_covariance(problem.per_example_gradients())
    H = problem.hessian
    assert np.linalg.norm(H @ C - C @ H) > 0.1 * np.linalg.norm(H @ C)
    config = SimulationConfig(lr=lr, batch_size=S, momentum=momentum, sampling="epoch",
                              steps=140_000, burn_in=20_000, replicas=32, snapshot_every=7, seed=6)
    res = simulate(problem, config, progress=False)
    _, U = np.linalg.eigh(C)
    projected = res.snapshots @ U                      # (n, R, d)
    per_replica = (projected**2).mean(axis=0)          # (R, d): the mean of delta is zero
    measured = per_replica.mean(axis=0)
    stderr = per_replica.std(axis=0, ddof=1) / np.sqrt(per_replica.shape[0])
    predicted = {m: np.diag(U.T @ quadratic_stationary_covariance(H, C, lr, momentum, m, M) @ U)
                 for m in ("anticorrelated", "discrete")}
    assert max_abs_z(measured, predicted["anticorrelated"], stderr) < 4
    assert max_abs_z(measured, predicted["discrete"], stderr) > 20
