"""Reproductions of Gross, Raulf & Räth (arXiv 2311.14120), Figs. 3a/3b and 5b: the computations.

``gross-fig3``
    Eigenvalues of the gradient-noise covariance C of linear regression at w*
    (N = 100, S = 10, sigma_eps^2 = 1e-2, P/N in {1.1, 2, 50}), normalised by
    sigma_x^2 sigma_eps^2 / S: measured from sampled mini-batches, the exact
    expression and the Hessian approximation C ~ sigma_r^2 H / S
    (docs/theory.md §2), with the largest and smallest eigenvalue over P.
``gross-fig5b``
    Eigenvalues of the stationary weight covariance M = <delta delta^T>
    (N = 100, lr = 0.1, S = 10, sigma_eps^2 = 0.25, P/N from 1.05 to 10),
    normalised by lr sigma_eps^2 / (2S): simulation against the exact finite-lr
    solution (§3c), the continuum Lyapunov solution (§3a) and detailed balance.

One data realisation per P (the paper averages the theory over several); the
seed fixes it.  The figures are drawn by :mod:`sgdnoise.report.gross`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sgdnoise._spec import rng
from sgdnoise.interrupts import stop_requested
from sgdnoise.dynamics.simulator import SimulationConfig, relaxation_steps, simulate
from sgdnoise.problems.linear import LinearRegression
from sgdnoise.progress import progress_bar
from sgdnoise.sampling import Sampler
from sgdnoise.stats.streaming import CovarianceAccumulator
from sgdnoise.theory import noise_covariance, stationary_covariance

N, S = 100, 10
FIG5B_METHODS = ("exact", "continuum", "detailed-balance")


@dataclass
class SpectraResult:
    """Spectra per P/N (``curves``), the settings, and for Fig. 3 the extremes over P/N."""

    config: dict[str, Any]
    curves: dict[str, dict[str, Any]]
    extremes: dict[str, list[float]] | None = None
    status: str = "completed"

    def to_summary(self) -> dict[str, Any]:
        summary = {"status": self.status, "config": self.config, "curves": self.curves}
        if self.extremes is not None:
            summary["extremes"] = self.extremes
        return summary


def measured_noise_covariance(problem: LinearRegression, sampling: str, batches: int,
                              generator: np.random.Generator) -> np.ndarray:
    """Covariance of the batch-gradient noise at w*, from ``batches`` sampled mini-batches."""
    G = problem.per_example_gradients()
    centred = G - G.mean(axis=0)
    sampler = Sampler(sampling, problem.n_examples, S, replicas=1, rng=generator)
    acc = CovarianceAccumulator(G.shape[1])
    for start in range(0, batches, 20_000):
        acc.add(centred[sampler.draw(min(20_000, batches - start))[:, 0]].mean(axis=1))
    return acc.covariance()


def fig3(seed: int, progress: bool = True) -> SpectraResult:
    """Gross et al. Fig. 3a/3b: noise-covariance spectrum, measured, exact and Hessian approximation."""
    label_noise, ratios = 1e-2, (1.1, 2.0, 50.0)
    norm = (1.0 / N) * label_noise / S
    config = {"N": N, "S": S, "label_noise": label_noise, "P_over_N": ratios, "seed": seed,
              "sampling": "with-replacement", "normalisation": "sigma_x^2 sigma_eps^2 / S"}
    curves = {}
    for ratio in progress_bar(progress, iterable=ratios, desc="gross-fig3"):
        if stop_requested():
            break
        problem = LinearRegression.teacher_student(N, int(round(ratio * N)), label_noise, seed=seed)
        exact = np.linalg.eigvalsh(noise_covariance(problem.X, problem.Y, S))[::-1] / norm
        hess = np.linalg.eigvalsh(noise_covariance(problem.X, problem.Y, S, approx="hessian"))[::-1] / norm
        sampled = measured_noise_covariance(problem, "with-replacement", 200_000,
                                            rng(seed, "gross-fig3", f"{ratio:g}"))
        measured = np.linalg.eigvalsh(sampled)[::-1] / norm
        curves[f"P/N={ratio:g}"] = {
            "P_over_N": ratio, "measured": measured, "exact": exact, "hessian_approximation": hess,
            "relative_difference_measured_exact_max": float(np.max(np.abs(measured / exact - 1))),
            "relative_difference_hessian_exact_max": float(np.max(np.abs(hess / exact - 1))),
        }
    return SpectraResult(config, curves, _extremes_over_P(label_noise, norm, seed), _status(curves, ratios))


def _extremes_over_P(label_noise: float, norm: float, seed: int) -> dict[str, list[float]]:
    grid = np.array([1.05, 1.1, 1.2, 1.5, 2, 3, 5, 10, 20, 50])
    ext: dict[str, list[float]] = {"P_over_N": grid.tolist()}
    for key in ("exact", "hessian_approximation"):
        ext[f"{key}_max"], ext[f"{key}_min"] = [], []
    for ratio in grid:
        problem = LinearRegression.teacher_student(N, int(round(ratio * N)), label_noise, seed=seed)
        for key, approx in (("exact", "exact"), ("hessian_approximation", "hessian")):
            ev = np.linalg.eigvalsh(noise_covariance(problem.X, problem.Y, S, approx=approx)) / norm
            ext[f"{key}_max"].append(float(ev[-1]))
            ext[f"{key}_min"].append(float(ev[0]))
    return ext


def fig5b(seed: int, progress: bool = True) -> SpectraResult:
    """Gross et al. Fig. 5b: eigenvalues of the weight covariance, simulated vs theory."""
    lr, label_noise, ratios = 0.1, 0.25, (1.05, 1.1, 1.2, 1.5, 2.0, 4.0, 10.0)
    norm = lr * label_noise / (2 * S)
    config = {"N": N, "S": S, "lr": lr, "label_noise": label_noise, "P_over_N": ratios, "seed": seed,
              "sampling": "with-replacement", "normalisation": "lr sigma_eps^2 / (2 S)"}
    curves = {}
    for ratio in progress_bar(progress, iterable=ratios, desc="gross-fig5b"):
        if stop_requested():
            break
        problem = LinearRegression.teacher_student(N, int(round(ratio * N)), label_noise, seed=seed)
        relax = float(relaxation_steps(problem.hessian_eigenvalues, lr, 0.0).max())
        steps = int(np.clip(30 * relax, 100_000, 2_000_000))
        simulation = SimulationConfig(lr=lr, batch_size=S, steps=steps, burn_in=int(min(10 * relax, 1_000_000)),
                                      replicas=8, full_covariance=True, covariance_every=10, seed=seed)
        result = simulate(problem, simulation, progress=False)
        measured = np.linalg.eigvalsh(result.covariance)[::-1] / norm
        theory = {method: np.linalg.eigvalsh(stationary_covariance(problem.X, problem.Y, lr, S,
                                                                   method=method))[::-1] / norm
                  for method in FIG5B_METHODS}
        trace = {m: float(v.sum()) for m, v in theory.items()}
        curves[f"P/N={ratio:g}"] = {
            "P_over_N": ratio, "measured": measured, **theory,
            "trace_relative_error": {m: (t - measured.sum()) / measured.sum() for m, t in trace.items()},
            "measured_trace_relative_stderr": float(result.var_theta_trace.stderr / result.var_theta_trace.value),
            "steps": steps, "burn_in": simulation.burn_in, "replicas": simulation.replicas,
            "slowest_relaxation_steps": relax,
            "directions_not_equilibrated": int((~result.equilibrated).sum()),
        }
    return SpectraResult(config, curves, status=_status(curves, ratios))


def _status(curves: dict[str, Any], ratios: tuple[float, ...]) -> str:
    """``completed``, or how far the sweep over P/N got before a stop was requested."""
    signal = stop_requested()
    if signal is None:
        return "completed"
    return f"interrupted ({signal}) after {len(curves)} of {len(ratios)} values of P/N; the last may be partial"
