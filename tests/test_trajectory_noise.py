"""The trajectory-noise split (docs/theory.md §3i): exact bookkeeping, and the known limits.

- the parts are the noise the simulator applied: a_k + b_k equals g_k - H theta_{k-1}, with
  g_k recovered from the trajectory itself (v_k = beta v_{k-1} - lr g_k);
- reference + weight + cross equals the total at every lag (to rounding), the cross term
  coming from an independent channel (polarisation);
- additive per-example noise (no weight dependence): the weight part vanishes and the
  reference part follows the epoch kernel -(M - h)/(M (M - 1)) within 4 standard errors;
- linear regression: the weight part is there, and the part at w* still follows the kernel.
"""
from __future__ import annotations

import numpy as np
import pytest

from sgdnoise.dynamics.simulator import SimulationConfig, make_engine
from sgdnoise.experiments.linear.mechanism import mechanism_summary, noise_model, trajectory_noise
from sgdnoise.measure.trajectory_noise import TrajectoryNoiseSplit
from sgdnoise.problems.linear import AdditiveNoiseQuadratic, LinearRegression
from sgdnoise.sampling import Sampler
from sgdnoise.theory import batch_noise_factor, noise_kernel, per_example_covariance


def test_parts_are_the_noise_the_simulator_applied():
    problem = LinearRegression.teacher_student(6, 24, 0.25, seed=1)
    lr, beta, R, n = 0.8, 0.5, 3, 50
    engine = make_engine(problem, lr, beta)
    batches = Sampler("epoch", 24, 4, R, np.random.default_rng(2)).draw(n)
    theta, vel = np.zeros((R, 1, 6)), np.zeros((R, 1, 6))
    out = engine(batches, theta, vel, record=False, theta_rows=n, every=1, phase=0, store_vel=False)
    states = np.concatenate([np.zeros((1, R, 6)), out.theta_buf[:, :, 0]], axis=0)  # theta_0 .. theta_n
    v = np.diff(states, axis=0)
    v_prev = np.concatenate([np.zeros((1, R, 6)), v[:-1]], axis=0)
    g = -(v - beta * v_prev) / lr
    lam = problem.hessian_eigenvalues
    a, b = TrajectoryNoiseSplit(*noise_model(problem), 2, R).parts(batches, states[:-1])
    np.testing.assert_allclose(a + b, g - lam * states[:-1], atol=1e-10)


def test_split_sums_to_total_and_linear_regression_has_a_weight_part():
    problem = LinearRegression.teacher_student(8, 32, 0.25, seed=3)
    config = SimulationConfig(lr=1.0, batch_size=4, momentum=0.0, sampling="epoch", burn_in=500,
                              replicas=8, max_lag=12, seed=4)
    noise = trajectory_noise(problem, config, steps=4000)
    c = noise.per_replica
    np.testing.assert_allclose(c[:, :, :3].sum(axis=2), c[:, :, 3], rtol=0, atol=1e-12 * np.abs(c[:, 0, 3]).max())
    summary = mechanism_summary(noise, problem, config)
    assert summary["split_residual"] < 1e-12
    weight = summary["all_directions"]["weight"]
    assert weight["variance"] > 10 * weight["variance_stderr"]  # lr tr H / S = 0.25: clearly present
    reference = noise.trace("reference")  # a_k does not depend on the weights: the kernel at w* holds
    expected = reference.value[0] * noise_kernel("epoch", 8, 12)
    assert np.max(np.abs((reference.value - expected) / np.where(reference.stderr > 0, reference.stderr, 1))) < 4


@pytest.mark.parametrize("sampling", ["epoch", "with-replacement"])
def test_additive_noise_has_no_weight_part_and_the_kernel_at_w_star(sampling):
    lam = np.linspace(0.2, 1.0, 5)
    problem = AdditiveNoiseQuadratic.gaussian(lam, 40, 1.0, seed=5)
    S, max_lag = 4, 14
    M = 40 // S
    config = SimulationConfig(lr=0.5, batch_size=S, momentum=0.0, sampling=sampling, burn_in=200,
                              replicas=16, max_lag=max_lag, seed=6)
    noise = trajectory_noise(problem, config, steps=M * 600)
    assert np.all(noise.per_replica[:, :, 1:3] == 0)  # weight part and cross terms vanish identically
    measured = noise.trace("reference")
    variance = batch_noise_factor(sampling, 40, S) * np.trace(per_example_covariance(noise_model(problem)[0]))
    expected = variance * noise_kernel(sampling, M, max_lag)
    z = (measured.value - expected) / measured.stderr
    assert np.max(np.abs(z)) < 4, z
    strength = noise.strengths()["reference"]["strength"]
    target = 0.0 if sampling == "epoch" else 1.0
    assert abs(strength.value - target) < 4 * strength.stderr + 1e-12, (strength, target)
