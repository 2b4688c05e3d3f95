"""The simulator: vectorised kernel vs a plain loop, streaming vs stored, closed forms (docs/theory.md §3b)."""
import numpy as np
import pytest

from sgdnoise.dynamics import kernels, simulator
from sgdnoise.sampling import Sampler
from sgdnoise.dynamics.engine import problem_arrays
from sgdnoise.dynamics.simulator import SimulationConfig, simulate
from sgdnoise.errors import UsageError
from sgdnoise.problems.linear import AdditiveNoiseQuadratic, LinearRegression
from sgdnoise.theory.noise import batch_noise_factor

from conftest import max_abs_z


def _state(problem, R, seed):
    K = problem.outputs
    N = problem.dim // K
    rng = np.random.default_rng(seed)
    return rng.normal(size=(R, K, N)) * 0.1, rng.normal(size=(R, K, N)) * 0.01


@pytest.mark.parametrize("problem", [
    LinearRegression.teacher_student(7, 40, 0.3, outputs=2, seed=1),
    AdditiveNoiseQuadratic.gaussian(np.linspace(0.2, 3, 6), 40, 0.5, seed=2),
], ids=["linear-2-outputs", "additive"])
@pytest.mark.parametrize("momentum", [0.0, 0.7])
def test_kernel_matches_plain_loop_on_the_same_batches(problem, momentum):
    kind, Z, resid, lam, offsets = problem_arrays(problem)
    idx = Sampler("epoch", problem.n_examples, 4, 5, np.random.default_rng(3)).draw(200)
    theta, vel = _state(problem, 5, 4)
    ref_theta, ref_vel = theta.copy(), vel.copy()
    empty = np.empty((0, *theta.shape))
    sums = [np.zeros_like(theta) for _ in range(4)]
    bad = kernels.advance(kind, Z, resid, lam, offsets, idx, 0.3, momentum, theta, vel, *sums,
                          empty, 1, 0, empty, True)
    kernels.advance_reference(kind, Z, resid, lam, offsets, idx, 0.3, momentum, ref_theta, ref_vel)
    assert np.all(bad == -1)
    np.testing.assert_allclose(theta, ref_theta, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(vel, ref_vel, rtol=1e-10, atol=1e-13)


def test_torch_backend_matches_numpy_backend():
    problem = LinearRegression.teacher_student(6, 30, 0.3, outputs=2, seed=1)
    base = dict(lr=0.4, batch_size=5, momentum=0.5, sampling="random-batch", steps=300, burn_in=20,
                replicas=4, max_lag=3, full_covariance=True, covariance_every=3, snapshot_every=6,
                seed=11)
    a = simulate(problem, SimulationConfig(**base, backend="numpy"), progress=False)
    b = simulate(problem, SimulationConfig(**base, backend="torch"), progress=False)
    for name in ("var_theta", "var_v", "tau", "loss_excess"):
        np.testing.assert_allclose(getattr(a, name).value, getattr(b, name).value, rtol=1e-9)
    np.testing.assert_allclose(a.covariance, b.covariance, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(a.v_autocovariance.value, b.v_autocovariance.value, rtol=1e-8, atol=1e-15)
    np.testing.assert_allclose(a.snapshots, b.snapshots, rtol=1e-9, atol=1e-15)


def test_streaming_statistics_equal_those_of_the_stored_trajectory(monkeypatch):
    monkeypatch.setattr(simulator, "CHUNK_BYTES", 20_000)  # many chunks, lags across chunk boundaries
    problem = LinearRegression.teacher_student(5, 25, 0.3, seed=3)
    config = SimulationConfig(lr=0.5, batch_size=5, momentum=0.6, sampling="epoch", steps=600,
                              burn_in=50, replicas=12, max_lag=4, full_covariance=True,
                              snapshot_every=1, seed=2)
    res = simulate(problem, config, progress=False)
    traj = res.snapshots  # (steps, R, d): every measured step
    assert traj.shape == (600, 12, 5)
    flat = traj.reshape(-1, 5)
    np.testing.assert_allclose(res.covariance, np.cov(flat.T, bias=True), rtol=1e-9, atol=1e-14)
    thinned = simulate(problem, SimulationConfig(**{**config.__dict__, "covariance_every": 7,
                                                    "snapshot_every": 14}), progress=False)
    np.testing.assert_allclose(thinned.covariance, np.cov(traj[::7].reshape(-1, 5).T, bias=True),
                               rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(thinned.snapshots, traj[::14], rtol=1e-12)
    per_replica_var = ((traj - traj.mean(axis=(0, 1))) ** 2).mean(axis=0)
    np.testing.assert_allclose(res.var_theta.value, per_replica_var.mean(axis=0), rtol=1e-9)
    # velocity autocovariance from stored velocities v_t = theta_t - theta_{t-1}
    v = np.diff(traj, axis=0)
    for h in range(5):
        direct = (v[h:] * v[: len(v) - h]).mean(axis=0).mean(axis=0) - v.mean(axis=(0, 1)) ** 2
        np.testing.assert_allclose(res.v_autocovariance.value[h], direct, rtol=0.05, atol=1e-3 * direct[0])


def test_same_seed_same_numbers():
    problem = LinearRegression.teacher_student(5, 25, 0.3, seed=3)
    config = SimulationConfig(lr=0.5, batch_size=5, steps=500, burn_in=10, replicas=3, seed=5)
    a = simulate(problem, config, progress=False)
    b = simulate(problem, config, progress=False)
    np.testing.assert_array_equal(a.var_theta.value, b.var_theta.value)


def scalar_closed_form(lam, c, lr, beta):
    """docs/theory.md §3b: Var theta = lr c (1+beta) / (lam (1-beta) (2(1+beta) - lr lam))."""
    return lr * c * (1 + beta) / (lam * (1 - beta) * (2 * (1 + beta) - lr * lam))


@pytest.mark.slow
@pytest.mark.parametrize("momentum", [0.0, 0.8])
@pytest.mark.parametrize("sampling", ["with-replacement", "random-batch"])
def test_stationary_variance_matches_scalar_closed_form(momentum, sampling):
    """Additive per-example noise makes the noise state-independent: 3b is exact per direction.

    c_i = f lam_i^2 Var_n(a_{n,i}) with f the sampler's factor; within 4
    standard errors from 64 independent replicas, at every eigenvalue,
    including lr lam close to the stability limit where the continuum limit fails.
    """
    lam = np.array([0.05, 0.2, 1.0, 3.0, 6.0, 9.0 * (1 + momentum)])
    problem = AdditiveNoiseQuadratic.gaussian(lam, 50, 1.0, seed=7)
    lr, S = 0.2, 5
    config = SimulationConfig(lr=lr, batch_size=S, momentum=momentum, sampling=sampling,
                              steps=20_000, burn_in=3_000, replicas=64, seed=8)
    res = simulate(problem, config, progress=False)
    c = batch_noise_factor(sampling, 50, S) * lam**2 * problem.offsets.var(axis=0)
    expected = scalar_closed_form(lam, c, lr, momentum)
    assert max_abs_z(res.var_theta.value, expected, res.var_theta.stderr) < 4
    # and the test has teeth: the continuum (small-lr) limit lr c / (2 lam (1 - beta)) is rejected
    continuum = lr * c / (2 * lam * (1 - momentum))
    assert abs(res.var_theta.value[-1] - continuum[-1]) > 10 * res.var_theta.stderr[-1]


def test_divergence_stops_and_keeps_what_was_measured(monkeypatch):
    """One example with huge curvature makes SGD with S = 1 blow up although lr lam_max(H) < 2."""
    monkeypatch.setattr(simulator, "CHUNK_BYTES", 4000)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(10, 3)) * 0.3
    X[0] = [6.0, 0.0, 0.0]
    problem = LinearRegression(X, rng.normal(size=(10, 1)))
    lr = 0.9 * 2 / problem.hessian_eigenvalues.max()
    config = SimulationConfig(lr=lr, batch_size=1, steps=200_000, burn_in=0, replicas=2, seed=1)
    res = simulate(problem, config, progress=False)
    assert res.diverged_at is not None and 0 < res.steps_measured <= res.diverged_at
    # what was kept is exactly the statistics of the steps before the failing chunk
    kept = simulate(problem, SimulationConfig(**{**config.__dict__, "steps": res.steps_measured}),
                    progress=False)
    assert kept.diverged_at is None
    np.testing.assert_allclose(res.mean_theta.value, kept.mean_theta.value, rtol=1e-12)


def test_stability_limit_is_refused():
    problem = AdditiveNoiseQuadratic.gaussian(np.array([1.0, 4.0]), 10, 1.0)
    with pytest.raises(UsageError, match=r"stability limit.*lr must be < 0\.95"):
        SimulationConfig(lr=0.95, batch_size=2, momentum=0.9).validate(problem)
    SimulationConfig(lr=0.94, batch_size=2, momentum=0.9).validate(problem)


def test_interrupt_keeps_the_completed_chunks(monkeypatch):
    """Ctrl-C during a chunk: the run stops, says where, and keeps every completed chunk."""
    monkeypatch.setattr(simulator, "CHUNK_BYTES", 4000)
    problem = AdditiveNoiseQuadratic.gaussian(np.array([0.5, 1.0]), 20, 1.0)
    config = SimulationConfig(lr=0.1, batch_size=2, steps=10_000, burn_in=100, replicas=2, seed=3)
    calls = {"n": 0}
    advance = kernels.advance

    def interrupted_advance(*args):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return advance(*args)

    monkeypatch.setattr(kernels, "advance", interrupted_advance)
    res = simulate(problem, config, progress=False)
    assert res.interrupted_at is not None and res.diverged_at is None
    assert res.steps_measured == res.interrupted_at - config.burn_in > 0
    monkeypatch.setattr(kernels, "advance", advance)
    full = simulate(problem, SimulationConfig(**{**config.__dict__, "steps": res.steps_measured}),
                    progress=False)
    np.testing.assert_allclose(res.mean_theta.value, full.mean_theta.value, rtol=1e-12)
