"""``sgdnoise linear``: simulate SGD on a quadratic problem, measure, predict, compare.

config -> problem (teacher-student or .npz) -> noise at w* (covariance and
autocorrelation by lag) -> simulation (streaming statistics) -> every theory that
applies, compared with the measurement (:mod:`.comparison`) -> :class:`LinearResult`.
No files are written here; :mod:`sgdnoise.report.linear` writes the result folder.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sgdnoise._spec import rng
from sgdnoise.dynamics.checkpoint import Checkpoint
from sgdnoise.dynamics.simulator import SimulationConfig, SimulationResult, relaxation_steps, simulate
from sgdnoise.experiments.linear.comparison import STOPPED, noise_covariance_at_minimum, theory_block
from sgdnoise.experiments.linear.config import LinearConfig
from sgdnoise.experiments.linear.mechanism import TRAJECTORY_STEPS, applies, mechanism_summary, trajectory_noise
from sgdnoise.interrupts import announce_phase, stop_requested
from sgdnoise.measure.gradient_noise import NoiseAutocorrelation, noise_autocorrelation
from sgdnoise.measure.trajectory_noise import PARTS, TrajectoryNoise
from sgdnoise.problems.linear import QuadraticProblem
from sgdnoise.sampling import Sampler

#: Steps per replica of the noise measurement at w* (rounded up to whole epochs, at least 200 epochs).
NOISE_STEPS = 20_000


@dataclass
class LinearResult:
    """One sampler's run: measurement, noise at w*, and every applicable theory.

    Attributes
    ----------
    problem : LinearRegression or AdditiveNoiseQuadratic
    simulation : SimulationConfig
        What the simulator ran.
    measured : SimulationResult
        Stationary statistics per Hessian eigendirection with standard errors.
    noise_eigenvalues : ndarray (d,)
        Eigenvalues of the one-step noise covariance C at w*, ascending.
    autocorrelation : NoiseAutocorrelation or None
        tr cov(dg_k, dg_{k+h}) at w* by lag (None for ``fixed-order``).
    theory : dict
        The ``theory`` block: predictions per method, markers, comparison, note.
    settings : dict
        The experiment config (``LinearConfig.to_mapping()``) when run from one, else empty.
    trajectory_noise : TrajectoryNoise or str
        The noise along the trajectory split at w* (:mod:`.mechanism`), or why it was not measured.
    """

    problem: QuadraticProblem
    simulation: SimulationConfig
    measured: SimulationResult
    noise_eigenvalues: np.ndarray
    autocorrelation: NoiseAutocorrelation | None
    theory: dict[str, Any]
    settings: dict[str, Any] = field(default_factory=dict)
    trajectory_noise: TrajectoryNoise | str = "not measured"

    @property
    def sampling(self) -> str:
        return self.simulation.sampling

    @property
    def status(self) -> str:
        """``completed``, or where and why the run stopped early."""
        m = self.measured
        if m.diverged_at is not None:
            return (f"diverged at step {m.diverged_at}: weights became non-finite; "
                    f"statistics hold the {m.steps_measured} measured steps before")
        if m.interrupted_at is not None:
            where = ("before the simulation started (during the noise measurement at w*)"
                     if m.interrupted_at == 0 else f"at step {m.interrupted_at}")
            return (f"interrupted {where}; statistics hold the {m.steps_measured} measured steps "
                    f"before (of {self.simulation.steps} asked for)")
        if str(self.theory.get("epoch", {}).get("error", "")).startswith(STOPPED):
            return "simulation completed; interrupted during the theory: method epoch not computed"
        return "completed"

    def equilibration_needed(self) -> tuple[int, int] | None:
        """(burn_in, steps) that would equilibrate every direction (None if some direction is flat)."""
        slowest = float(relaxation_steps(self.measured.hessian_eigenvalues, self.simulation.lr,
                                         self.simulation.momentum).max())
        if not np.isfinite(slowest):
            return None
        return int(np.ceil(10 * slowest)), int(np.ceil(50 * slowest))

    def theory_curves(self) -> dict[str, dict[str, np.ndarray]]:
        """The per-method predictions (``var_theta`` and, for Kuehn-Rosenow, ``var_v``, ``tau``)."""
        return {name: values for name, values in self.theory.items()
                if isinstance(values, dict) and "var_theta" in values}

    def to_summary(self) -> dict[str, Any]:
        """The ``summary.json`` content (schema in the README)."""
        m = self.measured
        measured: dict[str, Any] = {
            "var_theta": m.var_theta.value, "var_theta_stderr": m.var_theta.stderr,
            "var_v": m.var_v.value, "var_v_stderr": m.var_v.stderr,
            "var_theta_trace": m.var_theta_trace.value, "var_theta_trace_stderr": m.var_theta_trace.stderr,
            "tau": m.tau.value, "tau_stderr": m.tau.stderr,
            "mean_theta": m.mean_theta.value, "mean_theta_stderr": m.mean_theta.stderr,
            "loss_excess": m.loss_excess.value, "loss_excess_stderr": m.loss_excess.stderr,
            "equilibrated": m.equilibrated,
            "steps_measured": m.steps_measured, "segments": m.segments,
        }
        if self.autocorrelation is not None:
            measured["noise_autocorrelation_trace"] = self.autocorrelation.trace.value
            measured["noise_autocorrelation_trace_stderr"] = self.autocorrelation.trace.stderr
        noise = self.trajectory_noise
        return {
            "status": self.status,
            "config": {"experiment": "linear", "settings": self.settings, "problem": self.problem.source,
                       "simulation": asdict(self.simulation)},
            "hessian_eigenvalues": m.hessian_eigenvalues,
            "measured": measured,
            "noise_covariance_eigenvalues": self.noise_eigenvalues,
            "theory": self.theory,
            "trajectory_noise": ({"skipped": noise} if isinstance(noise, str) else
                                 mechanism_summary(noise, self.problem, self.simulation)),
        }

    def arrays(self) -> dict[str, np.ndarray]:
        """Full-resolution arrays for ``arrays.npz`` (documented in :data:`ARRAY_DOCS`)."""
        m = self.measured
        arrays = {"hessian_eigenvalues": m.hessian_eigenvalues,
                  "noise_covariance_eigenvalues": self.noise_eigenvalues,
                  "equilibrated": m.equilibrated}
        for name in ("var_theta", "var_v", "tau"):
            est = getattr(m, name)
            arrays[name], arrays[f"{name}_stderr"] = est.value, est.stderr
        if m.covariance is not None:
            arrays["weight_covariance"] = m.covariance
        if m.v_autocovariance is not None:
            arrays["v_autocovariance"] = m.v_autocovariance.value
            arrays["v_autocovariance_stderr"] = m.v_autocovariance.stderr
        if m.snapshots is not None:
            arrays["snapshots"] = m.snapshots
        if self.autocorrelation is not None:
            arrays["noise_autocorrelation_trace"] = self.autocorrelation.trace.value
            arrays["noise_autocorrelation_trace_stderr"] = self.autocorrelation.trace.stderr
        if not isinstance(self.trajectory_noise, str):
            parts = [self.trajectory_noise.per_direction(p) for p in PARTS]
            arrays["trajectory_noise"] = np.stack([e.value for e in parts])
            arrays["trajectory_noise_stderr"] = np.stack([e.stderr for e in parts])
        return arrays


ARRAY_DOCS = {
    "hessian_eigenvalues": "(d,) ascending",
    "var_theta, var_theta_stderr, var_v, var_v_stderr, tau, tau_stderr":
        "(d,) per Hessian eigendirection, same order",
    "equilibrated": "(d,) bool: burn-in >= 10 and measurement >= 50 relaxation times",
    "weight_covariance": "(d, d) stationary covariance of w - w* in the Hessian eigenbasis (d <= 2000)",
    "v_autocovariance, v_autocovariance_stderr": "(max_lag + 1, d) cov(v_t, v_{t+h}) per eigendirection",
    "noise_covariance_eigenvalues": "(d,) ascending, one-step noise covariance C at w*",
    "snapshots": "(n, R, d) w - w* in the Hessian eigenbasis every --snapshot-every measured steps",
    "noise_autocorrelation_trace, noise_autocorrelation_trace_stderr":
        "(max_lag + 1,) tr cov(dg_k, dg_{k+h}) measured at w*",
    "trajectory_noise, trajectory_noise_stderr":
        "(4, max_lag + 1, d) <x_k x_{k-h}> per Hessian eigendirection of the noise along the trajectory, "
        "parts reference (at w*), weight ((H_B - H)(w - w*)), cross, total (docs/theory.md §3i)",
}


def measure_noise(problem: QuadraticProblem, config: SimulationConfig
                  ) -> tuple[np.ndarray, NoiseAutocorrelation | None]:
    """Eigenvalues of C at the minimiser, and the noise autocorrelation by lag (not for fixed-order)."""
    C = noise_covariance_at_minimum(problem, config)
    if config.sampling == "fixed-order" or config.max_lag == 0 or stop_requested():
        return np.linalg.eigvalsh(C), None
    sampler = Sampler(config.sampling, problem.n_examples, config.batch_size,
                      max(config.replicas, 10), rng(config.seed, "noise-autocorrelation"))
    M = sampler.epoch_length
    steps = M * max(200, -(-NOISE_STEPS // M))
    return np.linalg.eigvalsh(C), noise_autocorrelation(problem.per_example_gradients(), sampler, steps,
                                                        config.max_lag)


def run_problem(problem: QuadraticProblem, config: SimulationConfig, progress: bool = True,
                settings: dict[str, Any] | None = None, checkpoints: Path | None = None) -> LinearResult:
    """Measure the noise at w*, simulate, predict and compare, for any quadratic problem.

    With ``checkpoints`` (a folder), the simulation saves its full state there every
    :data:`sgdnoise.dynamics.checkpoint.EVERY_SECONDS` seconds as ``simulation-<sampling>.pkl``
    and resumes from it: a run killed and restarted is bit-identical to an uninterrupted one.
    The checkpoint is keyed by ``settings`` and the simulation config; another config's is refused.
    """
    announce_phase("noise")
    noise_eigenvalues, autocorr = measure_noise(problem, config)
    checkpoint = None
    if checkpoints is not None:
        checkpoint = Checkpoint(Path(checkpoints) / f"simulation-{config.sampling}.pkl",
                                {**(settings or {}), **asdict(config), "problem": problem.source})
    measured = simulate(problem, config, progress=progress, checkpoint=checkpoint)
    announce_phase("theory")
    theory = theory_block(problem, config, measured) if measured.steps_measured else {}
    reason = applies(problem, config)
    if reason is None and (measured.diverged_at is not None or measured.interrupted_at is not None):
        reason = "the simulation stopped early (diverged or interrupted)"
    split: TrajectoryNoise | str = reason or "not measured"
    if reason is None:
        announce_phase("trajectory noise")
        split = trajectory_noise(problem, config, min(config.steps, TRAJECTORY_STEPS))
    return LinearResult(problem, config, measured, noise_eigenvalues, autocorr, theory, settings or {}, split)


def run(config: LinearConfig, progress: bool = True, checkpoints: Path | None = None) -> LinearResult:
    """``sgdnoise linear``: the problem and the sampler of ``config``, all checks before any work.

    ``checkpoints``: a folder to checkpoint the simulation into and resume from (see :func:`run_problem`).
    """
    problem = config.problem()
    simulation = config.simulation(problem, config.sampling)
    return run_problem(problem, simulation, progress, config.to_mapping(), checkpoints)
