"""Reproductions of Gross, Raulf & Raeth (arXiv 2311.14120), Figs. 3a/3b and 5b.

``gross-fig3``
    Eigenvalues of the gradient-noise covariance C of linear regression at w*
    (N = 100, S = 10, sigma_eps^2 = 1e-2, P/N in {1.1, 2, 50}), normalised by
    sigma_x^2 sigma_eps^2 / S: (a) measured from sampled mini-batches against the
    exact expression; (b) the exact expression against the Hessian approximation
    C ~ sigma_r^2 H / S, with the largest and smallest eigenvalue over P.
``gross-fig5b``
    Eigenvalues of the stationary weight covariance M = <delta delta^T>
    (N = 100, lr = 0.1, S = 10, sigma_eps^2 = 0.25, P/N from 1.05 to 10),
    normalised by lr sigma_eps^2 / (2S): measured by simulation against the exact
    finite-lr solution (docs/theory.md §3c), the continuum Lyapunov solution (3a, the
    paper's eq_wts_cov) and the detailed-balance approximation.

One data realisation per P (the paper averages the theory over several); the
seed fixes it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sgdnoise.sampling import Sampler
from sgdnoise.dynamics.simulator import SimulationConfig, relaxation_steps, simulate
from sgdnoise.experiments.reproduce import Reproduction
from sgdnoise.stats.streaming import CovarianceAccumulator
from sgdnoise.problems.linear import LinearRegression
from sgdnoise.progress import progress_bar
from sgdnoise.report.figures import plt, save_figure
from sgdnoise.report.summary import write_summary
from sgdnoise.theory import noise_covariance, stationary_covariance

N, S = 100, 10


def measured_noise_covariance(problem: LinearRegression, sampling: str, batches: int,
                              seed: int) -> np.ndarray:
    """Covariance of the batch-gradient noise at w*, from ``batches`` sampled mini-batches."""
    G = problem.per_example_gradients()
    centred = G - G.mean(axis=0)
    sampler = Sampler(sampling, problem.n_examples, S, replicas=1, rng=np.random.default_rng(seed))
    acc = CovarianceAccumulator(G.shape[1])
    for start in range(0, batches, 20_000):
        acc.add(centred[sampler.draw(min(20_000, batches - start))[:, 0]].mean(axis=1))
    return acc.covariance()


def fig3(out: Path, seed: int) -> dict[str, Any]:
    """Gross et al. Fig. 3a/3b: noise-covariance spectrum vs its Hessian approximation."""
    label_noise, ratios = 1e-2, (1.1, 2.0, 50.0)
    norm = (1.0 / N) * label_noise / S
    fig, (ax_a, ax_b, ax_c) = plt.subplots(1, 3, figsize=(15, 4.3))
    summary: dict[str, Any] = {"config": {"N": N, "S": S, "label_noise": label_noise, "P_over_N": ratios,
                                          "seed": seed, "sampling": "with-replacement",
                                          "normalisation": "sigma_x^2 sigma_eps^2 / S"},
                               "curves": {}}
    for ratio in progress_bar(iterable=ratios, desc="gross-fig3"):
        problem = LinearRegression.teacher_student(N, int(round(ratio * N)), label_noise, seed=seed)
        exact = np.linalg.eigvalsh(noise_covariance(problem.X, problem.Y, S))[::-1] / norm
        hess = np.linalg.eigvalsh(noise_covariance(problem.X, problem.Y, S, approx="hessian"))[::-1] / norm
        measured = np.linalg.eigvalsh(measured_noise_covariance(problem, "with-replacement", 200_000,
                                                                seed + 1))[::-1] / norm
        rank = np.arange(1, N + 1)
        (line,) = ax_a.plot(rank, measured, lw=1.5, label=f"P/N = {ratio:g} measured")
        ax_a.plot(rank, exact, ls="--", color=line.get_color(), label=f"P/N = {ratio:g} exact")
        ax_b.plot(rank, exact, color=line.get_color(), label=f"P/N = {ratio:g} exact")
        ax_b.plot(rank, hess, ls="--", color=line.get_color(), label=f"P/N = {ratio:g} Hessian approx.")
        summary["curves"][f"P/N={ratio:g}"] = {
            "measured": measured, "exact": exact, "hessian_approximation": hess,
            "relative_difference_measured_exact_max": float(np.max(np.abs(measured / exact - 1))),
            "relative_difference_hessian_exact_max": float(np.max(np.abs(hess / exact - 1))),
        }
    extremes = _extremes_over_P(label_noise, norm, seed)
    summary["extremes"] = extremes
    for key, ls in (("exact", "-"), ("hessian_approximation", "--")):
        ax_c.plot(extremes["P_over_N"], extremes[f"{key}_max"], ls=ls, color="C3", label=f"max, {key}")
        ax_c.plot(extremes["P_over_N"], extremes[f"{key}_min"], ls=ls, color="C4", label=f"min, {key}")
    for ax, title in ((ax_a, "(a) measured vs exact"), (ax_b, "(b) exact vs Hessian approximation")):
        ax.set_yscale("log")
        ax.set_xlabel("rank")
        ax.set_ylabel(r"eigenvalue of $C$ / ($\sigma_x^2\sigma_\epsilon^2/S$)")
        ax.set_title(title)
        ax.legend(fontsize=7)
    ax_c.set_xscale("log")
    ax_c.set_yscale("log")
    ax_c.set_xlabel("P / N")
    ax_c.set_title("(inset) largest and smallest eigenvalue")
    ax_c.legend(fontsize=7)
    save_figure(fig, out, "gross_fig3")
    summary["files"] = {"gross_fig3.png": "panels (a), (b) and the inset of Fig. 3"}
    write_summary(out, summary)
    return summary


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


def fig5b(out: Path, seed: int) -> dict[str, Any]:
    """Gross et al. Fig. 5b: eigenvalues of the weight covariance, measured vs theory."""
    lr, label_noise, ratios = 0.1, 0.25, (1.05, 1.1, 1.2, 1.5, 2.0, 4.0, 10.0)
    norm = lr * label_noise / (2 * S)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    summary: dict[str, Any] = {"config": {"N": N, "S": S, "lr": lr, "label_noise": label_noise,
                                          "P_over_N": ratios, "seed": seed,
                                          "sampling": "with-replacement",
                                          "normalisation": "lr sigma_eps^2 / (2 S)"},
                               "curves": {}}
    for ratio in progress_bar(iterable=ratios, desc="gross-fig5b"):
        problem = LinearRegression.teacher_student(N, int(round(ratio * N)), label_noise, seed=seed)
        relax = float(relaxation_steps(problem.hessian_eigenvalues, lr, 0.0).max())
        steps = int(np.clip(30 * relax, 100_000, 2_000_000))
        config = SimulationConfig(lr=lr, batch_size=S, steps=steps,
                                  burn_in=int(min(10 * relax, 1_000_000)), replicas=8,
                                  full_covariance=True, covariance_every=10, seed=seed)
        result = simulate(problem, config, progress=False)
        measured = np.linalg.eigvalsh(result.covariance)[::-1] / norm
        theory = {method: np.linalg.eigvalsh(stationary_covariance(problem.X, problem.Y, lr, S,
                                                                   method=method))[::-1] / norm
                  for method in ("exact", "continuum", "detailed-balance")}
        rank = np.arange(1, N + 1)
        (line,) = axes[0].plot(rank, measured, lw=1.5, label=f"P/N = {ratio:g} measured")
        axes[0].plot(rank, theory["exact"], ls="--", color=line.get_color())
        axes[0].plot(rank, theory["continuum"], ls="-.", color=line.get_color(), lw=0.8)
        axes[0].plot(rank, theory["detailed-balance"], ls=":", color=line.get_color(), lw=0.8)
        trace = {m: float(v.sum()) for m, v in theory.items()}
        rel_se = float(result.var_theta_trace.stderr / result.var_theta_trace.value)
        axes[1].errorbar(ratio, 0, yerr=2 * rel_se, color="grey", capsize=3,
                         label="±2 s.e. of the measurement" if ratio == ratios[0] else None)
        summary["curves"][f"P/N={ratio:g}"] = {
            "measured": measured, **theory,
            "trace_relative_error": {m: (t - measured.sum()) / measured.sum() for m, t in trace.items()},
            "measured_trace_relative_stderr": rel_se,
            "steps": steps, "burn_in": config.burn_in, "replicas": config.replicas,
            "slowest_relaxation_steps": relax,
            "directions_not_equilibrated": int((~result.equilibrated).sum()),
        }
        for j, method in enumerate(("exact", "continuum", "detailed-balance")):
            axes[1].scatter(ratio, trace[method] / measured.sum() - 1, color=f"C{j}", marker="os^"[j],
                            label=method if ratio == ratios[0] else None)
    axes[0].set_yscale("log")
    axes[0].set_xlabel("rank")
    axes[0].set_ylabel(r"eigenvalue of $M$ / ($\eta\sigma_\epsilon^2/2S$)")
    axes[0].set_title("solid: measured; dashed: exact (3c); dash-dot: continuum; dotted: detailed balance",
                      fontsize=8)
    axes[0].legend(fontsize=7)
    axes[1].axhline(0, color="black", lw=0.5)
    axes[1].set_xscale("log")
    axes[1].set_xlabel("P / N")
    axes[1].set_ylabel("tr M: theory / measured - 1")
    axes[1].legend(fontsize=8)
    save_figure(fig, out, "gross_fig5b")
    summary["files"] = {"gross_fig5b.png": "weight-covariance spectra and trace errors"}
    write_summary(out, summary)
    return summary


REPRODUCTIONS = {
    "gross-fig3": Reproduction("Gross et al. Fig. 3a/3b: noise-covariance spectrum vs Hessian approximation", fig3),
    "gross-fig5b": Reproduction("Gross et al. Fig. 5b: weight-covariance eigenvalues, measured vs theory", fig5b),
}
