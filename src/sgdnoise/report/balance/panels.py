"""Figures of one ``balance`` run: the density panel and the law of balance."""
from __future__ import annotations

from typing import Any

import numpy as np

from sgdnoise.dynamics.balance_sgd import BalanceRun
from sgdnoise.experiments.balance import BalanceResult
from sgdnoise.experiments.balance.results import density_summary
from sgdnoise.report.figures import plt
from sgdnoise.report.folder import ResultFolder
from sgdnoise.theory import balance as theory


def draw_density_panel(ax: Any, result: BalanceResult) -> None:
    """Histograms of the final ``v`` of SGD (and the SDE) with the predicted density and the KS distances."""
    for name, colour in (("sgd", "C0"), ("sde", "C1")):
        sample = result.samples.get(name)
        if sample is None or sample.n < 2:
            continue
        h, dist = sample.histogram, sample.distance
        label = name.upper() + (f", KS {dist['value']:.4f} (crit. {dist['critical']:.4f})" if dist else "")
        ax.stairs(h["density"], h["edges"], color=colour, label=label, lw=1.2)
    shown = density_summary(result.density)
    if shown is not None:
        ax.plot(shown["v"], shown["pdf"], "k-", lw=1, label="theory")
    edges = result.samples["sgd"].histogram["edges"]
    ax.set_xlim(edges[0], edges[-1])
    ax.set_ylim(0, 1.3 * max(np.max(s.histogram["density"]) for s in result.samples.values() if s.n >= 2))
    config = result.config
    ax.set_title(f"D = {config.depth}, d = {config.width}, T = {result.T:g}  (T_c = {result.T_c:.3g})",
                 fontsize=9)
    ax.set_xlabel("v")
    ax.set_ylabel("p(v)")
    ax.legend(fontsize=7)


def save_density(result: BalanceResult, folder: ResultFolder) -> str | None:
    """``density.png``: the density panel of the run; None, or why it was not drawn."""
    if result.samples["sgd"].n < 2:
        return f"fewer than 2 SGD replicas left to show ({result.status})"
    fig, ax = plt.subplots(figsize=(5, 3.6))
    draw_density_panel(ax, result)
    folder.save_figure(fig, "density", "histograms of the final v of SGD and the SDE with the predicted "
                                       "density and the KS distances")
    return None


def _draw_run(ax: Any, name: str, run: BalanceRun, result: BalanceResult) -> None:
    """Mean ``log|u_k^2 - u_{k+1}^2|`` of one run; for SGD also the law of balance along its paths."""
    styles = {"sgd": "C0-", "sde": "C1--", "gradient_flow": "k:"}
    ok = ~run.diverged
    pairs = run.imbalance.shape[2]
    for k in range(pairs):
        y = np.mean(np.log(np.abs(run.imbalance[:, ok, k])), axis=1)
        ax.plot(run.times, y - y[0], styles[name], lw=1.2,
                label=name.replace("_", " ") + (f", layers {k},{k + 1}" if pairs > 1 else ""))
        if name == "sgd":
            path = theory.predicted_log_imbalance(result.moments, result.T, result.config.weight_decay,
                                                  run.integrals[:, ok, k], run.times[:, None])
            ax.plot(run.times, path.mean(axis=1), color="grey", lw=3, alpha=0.4,
                    label="law of balance along the SGD paths" if k == 0 else None)


def save_balance(result: BalanceResult, folder: ResultFolder) -> None:
    """``balance.png``: mean ``log|u_k^2 - u_{k+1}^2|`` against time, with the law of balance (docs/theory.md §6a)."""
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for name, run in result.balance_runs.items():
        _draw_run(ax, name, run, result)
    ax.set_xlabel("time (lr x steps)")
    ax.set_ylabel("mean log|u_k^2 - u_{k+1}^2| - initial")
    ax.set_title(f"law of balance, D = {result.config.depth}, T = {result.T:g}", fontsize=9)
    ax.legend(fontsize=7)
    folder.save_figure(fig, "balance", "mean log|u_k^2 - u_{k+1}^2| against time for SGD, the SDE and "
                                       "gradient flow, with the law of balance along the SGD paths")
