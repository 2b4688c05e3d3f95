"""The mechanism, measured: gradient noise along the actual SGD trajectory, split at w* (docs/theory.md §3i).

:func:`trajectory_noise` runs the simulator's engine (the same compiled steps and sampler as
:func:`sgdnoise.dynamics.simulator.simulate`) from w*, discards a burn-in, then hands every
step's batch and the weights it started from to
:class:`sgdnoise.measure.trajectory_noise.TrajectoryNoiseSplit`, which measures the lag
covariances of the noise at the reference point (``g_B(w*) - g(w*)``), of the
weight-dependent part (``(H_B - H)(w - w*)``), of their cross terms and of the total.
:func:`mechanism_summary` turns them into the numbers of ``summary.json``: per part the
fraction of the variance and the effective strength (two-sided lag sum relative to white
noise), over all directions and over the directions below ``lambda_cross``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from sgdnoise._spec import rng
from sgdnoise.dynamics.simulator import SimulationConfig, make_engine
from sgdnoise.interrupts import stop_requested
from sgdnoise.measure.trajectory_noise import PARTS, TrajectoryNoise, TrajectoryNoiseSplit
from sgdnoise.problems.linear import QuadraticProblem
from sgdnoise.sampling import Sampler
from sgdnoise.theory import lambda_cross

#: Measured steps per replica (rounded up to whole epochs) of the trajectory-noise measurement.
TRAJECTORY_STEPS = 20_000
#: Floats per chunk of gathered batch features (bounds the memory of one chunk).
CHUNK_FLOATS = 4_000_000


def noise_model(problem: QuadraticProblem) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """(g_n at w*, features z_n or None, diag H), all in the Hessian eigenbasis; one output only."""
    lam = problem.hessian_eigenvalues
    if problem.kind == "linear":
        Z = problem.eigen_features
        return Z * problem.residuals, Z, lam  # grad l_n(w*) = z_n r_n, A_n = z_n z_n^T
    return -lam * problem.centred_offsets, None, lam  # grad l_n = H (theta - a_n): A_n = H


def applies(problem: QuadraticProblem, config: SimulationConfig) -> str | None:
    """None when the measurement applies, else why not (one line)."""
    if problem.outputs != 1:
        return "the trajectory-noise split is implemented for one output (K = 1)"
    if config.max_lag < 1:
        return "max_lag is 0: no lags to measure"
    if config.sampling == "fixed-order":
        return "fixed-order sampling is periodic: its noise has no stationary lag covariance"
    return None


def trajectory_noise(problem: QuadraticProblem, config: SimulationConfig, steps: int = TRAJECTORY_STEPS,
                     progress: bool = False) -> TrajectoryNoise:
    """Split lag covariances along ``config.replicas`` SGD trajectories (``config.max_lag`` lags).

    The trajectories start at w*, run ``config.burn_in`` steps unmeasured, then ``steps`` (rounded
    up to whole epochs) measured ones; batches come from the same sampler as the simulator's,
    on their own seed stream.  Stops early (keeping what was measured) when asked to stop.
    """
    R, d, S = config.replicas, problem.dim, config.batch_size
    engine = make_engine(problem, config.lr, config.momentum)
    sampler = Sampler(config.sampling, problem.n_examples, S, R, rng(config.seed, "trajectory-noise"))
    M = sampler.epoch_length
    steps = M * -(-steps // M)
    split = TrajectoryNoiseSplit(*noise_model(problem), config.max_lag, R)
    theta, vel = np.zeros((R, 1, d)), np.zeros((R, 1, d))
    chunk = int(max(config.max_lag + 1, CHUNK_FLOATS // (R * d * (S + 8))))
    for start in range(0, config.burn_in, chunk):
        engine(sampler.draw(min(chunk, config.burn_in - start)), theta, vel, record=False, theta_rows=0,
               every=1, phase=0, store_vel=False)
    done = 0
    while done < steps and not (done and stop_requested()):
        n = min(chunk, steps - done)
        batches = sampler.draw(n)
        before = theta[:, 0].copy()
        out = engine(batches, theta, vel, record=False, theta_rows=n, every=1, phase=0, store_vel=False)
        theta_before = np.concatenate([before[None], out.theta_buf[:-1, :, 0]], axis=0)
        split.add(batches, theta_before)
        done += n
        if progress:
            print(f"trajectory noise: {done}/{steps} steps", end="\r", flush=True)
    return split.result()


def _numbers(strengths: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """{part: {key: value, key_stderr: stderr}} from Estimates."""
    return {part: {k: v for key, est in entry.items()
                   for k, v in ((key, float(est.value)), (f"{key}_stderr", float(est.stderr)))}
            for part, entry in strengths.items()}


def mechanism_summary(noise: TrajectoryNoise, problem: QuadraticProblem, config: SimulationConfig) -> dict[str, Any]:
    """The ``trajectory_noise`` block of summary.json (README: keys and meaning)."""
    lam = problem.hessian_eigenvalues
    cross = lambda_cross(config.lr, config.momentum, config.batch_size, problem.n_examples)
    below = lam < cross
    block: dict[str, Any] = {
        "max_lag": noise.max_lag,
        "steps": noise.steps,
        "replicas": int(noise.per_replica.shape[0]),
        "parts": list(PARTS),
        "normalised_trace": {p: noise.normalised(p).value for p in PARTS},
        "normalised_trace_stderr": {p: noise.normalised(p).stderr for p in PARTS},
        "all_directions": _numbers(noise.strengths()),
        "directions_below_lambda_cross": int(below.sum()),
    }
    if below.any():
        block["below_lambda_cross"] = _numbers(noise.strengths(below))
    total = noise.per_replica[..., PARTS.index("total"), :].sum(axis=(0, 1))
    block["split_residual"] = float(np.abs(noise.per_replica[..., :3, :].sum(axis=2)
                                           - noise.per_replica[..., 3, :]).sum(axis=(0, 1)).max()
                                    / max(np.abs(total).max(), 1e-300))
    return block
