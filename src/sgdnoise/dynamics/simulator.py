"""Vectorised SGD with heavy-ball momentum on quadratic problems, with streaming measurements.

R independent replicas advance together (docs/theory.md §1)::

    v_k = beta v_{k-1} - lr g_k(theta_{k-1}),   theta_k = theta_{k-1} + v_k

in the Hessian eigenbasis, so that the statistics along each eigendirection
come for free.  Nothing stores the trajectory: the run is cut into chunks of
steps; the backend advances all replicas through a chunk in one call and the
chunk's sums feed the streaming statistics of :mod:`sgdnoise.stats.streaming`.

Backends
--------
``numpy``
    a numba-compiled loop over replicas (threads) and steps
    (:func:`sgdnoise.dynamics.kernels.advance`);
``torch``
    batched PyTorch operations over replicas, one step per iteration, on CPU
    or CUDA (``device``); float64.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sgdnoise.dynamics.checkpoint import Checkpoint
from sgdnoise.dynamics.engine import ChunkOutput, Engine, numpy_engine, problem_arrays
from sgdnoise._spec import (
    check_choice,
    check_int,
    check_momentum,
    check_positive,
    check_sampling,
    check_stable,
    rng,
)
from sgdnoise.interrupts import announce_phase, stop_requested
from sgdnoise.sampling import Sampler
from sgdnoise.errors import UsageError
from sgdnoise.stats.streaming import (
    CovarianceAccumulator,
    Estimate,
    LagAutocovariance,
    SegmentMoments,
    ratio_estimate,
    segment_mean,
)
from sgdnoise.problems.linear import QuadraticProblem
from sgdnoise.progress import progress_bar

BACKENDS = ("numpy", "torch")
MIN_SEGMENTS = 10
CHUNK_BYTES = 32 * 2**20


@dataclass(frozen=True)
class SimulationConfig:
    """Everything that defines a run (recorded in summary.json)."""

    lr: float
    batch_size: int
    momentum: float = 0.0
    sampling: str = "with-replacement"
    steps: int = 20_000
    burn_in: int = 2_000
    replicas: int = 16
    seed: int = 0
    backend: str = "numpy"
    device: str = "cpu"
    max_lag: int = 0
    full_covariance: bool = False
    covariance_every: int = 1
    snapshot_every: int = 0

    @property
    def state_stride(self) -> int:
        """Every how many measured steps the full state is handed to the statistics (0: never)."""
        return self.covariance_every if self.full_covariance else self.snapshot_every

    def validate(self, problem: QuadraticProblem) -> None:
        """Raise :class:`UsageError` for any invalid setting, naming the field."""
        P = problem.n_examples
        check_positive("lr", self.lr)
        check_int("batch_size", self.batch_size, 1, P)
        check_momentum(self.momentum)
        check_sampling(self.sampling)
        for name, low in (("steps", 1), ("burn_in", 0), ("replicas", 1), ("max_lag", 0),
                          ("snapshot_every", 0), ("covariance_every", 1)):
            check_int(name, getattr(self, name), low)
        if self.full_covariance and self.snapshot_every % self.covariance_every:
            raise UsageError(f"snapshot_every must be a multiple of covariance_every "
                             f"({self.covariance_every}); got {self.snapshot_every}", name="snapshot_every")
        check_choice("backend", self.backend, BACKENDS)
        if self.backend == "numpy" and self.device != "cpu":
            raise UsageError(f"device {self.device!r} needs backend torch; the numpy backend runs on cpu",
                             name="device")
        if self.backend == "torch":
            from sgdnoise.dynamics.torch_backend import check_device

            check_device(self.device)
        check_stable(self.lr, float(problem.hessian_eigenvalues.max()), self.momentum)


@dataclass
class SimulationResult:
    """Measured stationary statistics, per Hessian eigendirection (ascending eigenvalue).

    Attributes
    ----------
    hessian_eigenvalues : (d,)
    var_theta, var_v : Estimate
        Stationary variance of delta = w - w* and of the velocity v along each
        eigendirection, with standard errors over independent segments.
    tau : Estimate
        tau_i = 2 var_theta_i / var_v_i (velocity-correlation time).
    mean_theta : Estimate
        Mean of delta along each eigendirection (zero for an unbiased stationary state).
    loss_excess : Estimate
        <L> - L* = 1/2 sum_i lambda_i <theta_i^2> (exact for a quadratic loss).
    var_theta_trace : Estimate
        sum_i Var theta_i = tr Cov(delta).
    equilibrated : (d,) bool
        Directions whose burn-in lasted at least 10 and whose measurement at least
        50 relaxation times of the second moments (:func:`relaxation_steps`);
        elsewhere the measured variance may still carry the start at the minimiser.
    covariance : (d, d) or None
        Stationary covariance of delta in the eigenbasis (``full_covariance``).
    v_autocovariance : Estimate or None
        cov(v_t, v_{t+h}) for h = 0..max_lag along each eigendirection, shape (max_lag+1, d).
    snapshots : (n, R, d) or None
        theta every ``snapshot_every`` measured steps, eigen coordinates.
    steps_measured : int
        Steps per replica that entered the statistics.
    diverged_at : int or None
        Global step (counting burn-in) at which some replica's weights became
        non-finite; statistics then hold everything measured before that chunk.
    interrupted_at : int or None
        Global step at which the run was interrupted (Ctrl-C); statistics hold
        every chunk completed before.
    """

    config: SimulationConfig
    hessian_eigenvalues: np.ndarray
    var_theta: Estimate
    var_v: Estimate
    tau: Estimate
    mean_theta: Estimate
    loss_excess: Estimate
    var_theta_trace: Estimate
    equilibrated: np.ndarray
    steps_measured: int
    segments: int
    covariance: np.ndarray | None = None
    v_autocovariance: Estimate | None = None
    snapshots: np.ndarray | None = None
    diverged_at: int | None = None
    interrupted_at: int | None = None
    final_theta: np.ndarray | None = field(default=None, repr=False)


@dataclass
class _RunState:
    """Everything a run carries from chunk to chunk (what a checkpoint saves)."""

    theta: np.ndarray
    vel: np.ndarray
    sampler: Sampler
    theta_m: SegmentMoments
    vel_m: SegmentMoments
    cov: CovarianceAccumulator | None
    acov: LagAutocovariance | None
    snapshots: list[np.ndarray]
    done: int = 0


def _initial_state(problem: QuadraticProblem, config: SimulationConfig, start: np.ndarray | None,
                   blocks: int) -> _RunState:
    R, d, K = config.replicas, problem.dim, problem.outputs
    N = d // K
    sampler = Sampler(config.sampling, problem.n_examples, config.batch_size, R, rng(config.seed, "batches"))
    theta = np.zeros((R, d))
    if start is not None:
        theta[:] = problem.to_eigen(np.asarray(start, np.float64) - problem.minimiser.reshape(-1))
    theta = theta.reshape(R, N, K).transpose(0, 2, 1).copy()  # internal layout (R, K, N)
    return _RunState(theta, np.zeros_like(theta), sampler, SegmentMoments(blocks * R, (K, N)),
                     SegmentMoments(blocks * R, (K, N)), CovarianceAccumulator(d) if config.full_covariance else None,
                     LagAutocovariance(config.max_lag, R, (K, N)) if config.max_lag > 0 else None, [])


def _chunk_steps(config: SimulationConfig, d: int) -> int:
    """Steps per chunk: bounded by memory, at most 1/20 of the run and 100 000."""
    stride = config.state_stride
    bytes_per_step = config.replicas * (config.batch_size * 8 + (8 * d if config.max_lag else 0)
                                        + (8 * d // stride if stride else 0))
    return int(max(1, min(CHUNK_BYTES // bytes_per_step, 1 + config.steps // 20, 100_000)))


def simulate(problem: QuadraticProblem, config: SimulationConfig,
             start: np.ndarray | None = None, progress: bool = True,
             checkpoint: Checkpoint | None = None) -> SimulationResult:
    """Run ``config.replicas`` SGD replicas on ``problem`` and measure their stationary statistics.

    Parameters
    ----------
    problem : LinearRegression or AdditiveNoiseQuadratic
    config : SimulationConfig
    start : ndarray (d,) or (R, d), optional
        Initial weights (in weight coordinates); default the minimiser
        (delta = 0).  Velocities start at zero.
    progress : bool
        Show a progress bar.
    checkpoint : Checkpoint, optional
        Resume from it when it holds a state, and save the full state into it every
        ``checkpoint.every`` seconds and when interrupted (deleted once the run completes);
        the result is bit-identical to an uninterrupted run.

    Returns
    -------
    SimulationResult
    """
    config.validate(problem)
    R = config.replicas
    engine = make_engine(problem, config.lr, config.momentum, config.backend, config.device)
    blocks = max(1, math.ceil(MIN_SEGMENTS / R))
    block_bounds = np.linspace(0, config.steps, blocks + 1).astype(int)
    state = checkpoint.load() if checkpoint is not None else None
    state = state or _initial_state(problem, config, start, blocks)
    stride = config.state_stride
    chunk = _chunk_steps(config, problem.dim)
    total = config.burn_in + config.steps
    diverged_at, interrupted_at = None, None
    bar = progress_bar(progress, total=total, initial=state.done, desc=f"SGD {config.sampling}", unit="step")
    announce_phase("burn-in" if state.done < config.burn_in else "measurement")
    while (done := state.done) < total:
        if stop_requested():
            interrupted_at = done
            break
        measuring = done >= config.burn_in
        if measuring:
            block = int(np.searchsorted(block_bounds, done - config.burn_in, side="right") - 1)
            n = min(chunk, config.burn_in + block_bounds[block + 1] - done)
        else:
            block, n = -1, min(chunk, config.burn_in - done)
        phase = (-(done - config.burn_in)) % stride if measuring and stride else 0
        rows = len(range(phase, n, stride)) if measuring and stride else 0
        try:
            out = engine(state.sampler.draw(n), state.theta, state.vel, record=measuring, theta_rows=rows,
                         every=max(stride, 1), phase=phase, store_vel=measuring and config.max_lag > 0)
        except KeyboardInterrupt:  # Ctrl-C outside graceful_stop: drop the unfinished chunk, keep the rest
            interrupted_at = done
            break
        if out.bad_step is not None:
            diverged_at = done + out.bad_step
            break
        if measuring:
            _accumulate(out, block, R, n, state, config, done - config.burn_in + phase + stride * np.arange(rows))
        state.done += n
        bar.update(n)
        if checkpoint is not None and checkpoint.due() and state.done < total:
            checkpoint.save(state)
        if state.done == config.burn_in:
            announce_phase("measurement")
    bar.close()
    if checkpoint is not None and interrupted_at is not None:
        checkpoint.save(state)
    elif checkpoint is not None and state.done == total:
        checkpoint.remove()
    with np.errstate(over="ignore", invalid="ignore"):  # statistics of a run that blew up
        result = _finish(problem, config, state.theta_m, state.vel_m, state.cov, state.acov, state.snapshots,
                         diverged_at, _weight_layout(state.theta))
    result.interrupted_at = interrupted_at
    return result


def _accumulate(out: ChunkOutput, block: int, R: int, n: int, state: _RunState,
                config: SimulationConfig, measured_step: np.ndarray) -> None:
    """Feed one chunk's sums and states to the streaming statistics.

    Values of a run that is blowing up may overflow here before they turn
    non-finite; that is reported as divergence, not as a floating-point warning.
    """
    segs = slice(block * R, (block + 1) * R)
    theta_m, vel_m, cov, acov = state.theta_m, state.vel_m, state.cov, state.acov
    with np.errstate(over="ignore", invalid="ignore"):
        theta_m.add(segs, out.s1, out.s2, n)
        vel_m.add(segs, out.u1, out.u2, n)
        states = _weight_layout(out.theta_buf)
        if cov is not None:
            cov.add(states.reshape(-1, states.shape[-1]))
        if acov is not None:
            acov.add(out.vel_buf)
    if config.snapshot_every:
        state.snapshots.append(states[measured_step % config.snapshot_every == 0])


def relaxation_steps(eigenvalues: np.ndarray, lr: float, momentum: float) -> np.ndarray:
    """Steps over which the second moments along each eigendirection relax, 1 / (1 - rho_i^2).

    rho_i is the spectral radius of the deterministic recursion
    ``D_i = [[1 + beta - lr lambda_i, -beta], [1, 0]]`` (docs/theory.md §3d); infinite
    on flat directions.
    """
    lam = np.asarray(eigenvalues, np.float64)
    trace = 1 + momentum - lr * lam
    disc = trace.astype(complex) ** 2 - 4 * momentum
    rho = np.maximum(np.abs((trace + np.sqrt(disc)) / 2), np.abs((trace - np.sqrt(disc)) / 2))
    with np.errstate(divide="ignore"):
        return 1.0 / (1.0 - np.minimum(rho, 1.0) ** 2)


def _equilibrated(lam: np.ndarray, config: SimulationConfig, steps_measured: int) -> np.ndarray:
    relax = relaxation_steps(lam, config.lr, config.momentum)
    return (config.burn_in >= 10 * relax) & (steps_measured >= 50 * relax)


def _weight_layout(internal: np.ndarray) -> np.ndarray:
    """(..., K, N) internal layout -> (..., N*K) eigen coordinates, N-major, output fastest."""
    return np.swapaxes(internal, -1, -2).reshape(*internal.shape[:-2], internal.shape[-1] * internal.shape[-2])


def _finish(problem: QuadraticProblem, config: SimulationConfig, theta_m: SegmentMoments,
            vel_m: SegmentMoments, cov: CovarianceAccumulator | None,
            acov: LagAutocovariance | None, snapshots: list[np.ndarray],
            diverged_at: int | None, final_theta: np.ndarray) -> SimulationResult:
    lam = problem.hessian_eigenvalues
    steps_measured = int(theta_m.count.reshape(-1, config.replicas)[:, 0].sum())
    empty = Estimate(np.full(lam.shape, np.nan), np.full(lam.shape, np.nan))
    if steps_measured == 0:
        nan = Estimate(np.array(np.nan), np.array(np.nan))
        return SimulationResult(config, lam, empty, empty, empty, empty, nan, nan,
                                np.zeros(lam.shape, bool), 0, 0,
                                diverged_at=diverged_at, final_theta=final_theta)
    var_theta_seg = _weight_layout(theta_m.segment_variances())
    var_v_seg = _weight_layout(vel_m.segment_variances())
    second_moment = _weight_layout(theta_m.sum_sq[theta_m.filled]) / theta_m.count[theta_m.filled][:, None]
    loss_seg = 0.5 * second_moment @ lam
    autocov = None
    if acov is not None and acov.count > 0:
        a = acov.autocovariance()
        autocov = Estimate(_weight_layout(a.value), _weight_layout(a.stderr))
    snaps = np.concatenate(snapshots, axis=0) if snapshots else None
    mean = theta_m.mean()
    return SimulationResult(
        config=config,
        hessian_eigenvalues=lam,
        var_theta=segment_mean(var_theta_seg),
        var_v=segment_mean(var_v_seg),
        tau=ratio_estimate(var_theta_seg, var_v_seg, scale=2.0),
        mean_theta=Estimate(_weight_layout(mean.value), _weight_layout(mean.stderr)),
        loss_excess=segment_mean(loss_seg),
        var_theta_trace=segment_mean(var_theta_seg.sum(axis=1)),
        equilibrated=_equilibrated(lam, config, steps_measured),
        steps_measured=steps_measured,
        segments=var_theta_seg.shape[0],
        covariance=cov.covariance() if cov is not None and cov.count else None,
        v_autocovariance=autocov,
        snapshots=snaps,
        diverged_at=diverged_at,
        final_theta=final_theta,
    )


def make_engine(problem: QuadraticProblem, lr: float, momentum: float, backend: str = "numpy",
                device: str = "cpu") -> Engine:
    """The engine that advances replicas of ``problem`` chunk by chunk on ``backend``."""
    if backend == "torch":
        from sgdnoise.dynamics.torch_backend import TorchEngine

        return TorchEngine(*problem_arrays(problem), lr, momentum, device)
    return numpy_engine(problem, lr, momentum)
