"""Figures of one ``balance`` run: the density panel and the law of balance."""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.integrate import cumulative_trapezoid

from sgdnoise.dynamics.balance_sgd import BalanceRun
from sgdnoise.experiments.balance import BalanceResult
from sgdnoise.experiments.balance.analysis import sgd_finite_step_remainder
from sgdnoise.experiments.balance.problem import build
from sgdnoise.experiments.balance.results import density_summary
from sgdnoise.report.figures import add_footer, plt
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


def settings(result: BalanceResult) -> str:
    """The run's settings in one line, for a figure's footer."""
    c = result.config
    data = (f"data {c.data}" if c.data else
            f"data y = {c.slope:g} x + eps, eps ~ N(0, {c.noise_std:g}^2), x ~ N(0, {c.x_std:g}^2)")
    return (f"{data}; lr = {result.lr:g}, S = {c.batch}, weight decay {c.weight_decay:g}; {c.replicas} replicas "
            f"(imbalance runs {c.balance_replicas}), t = {result.time:g} ({result.steps} steps); "
            f"SDE tol {c.tol:g}; seed {c.seed}; status: {result.status}")


def save_density(result: BalanceResult, folder: ResultFolder) -> str | None:
    """``density.png``: the density panel of the run; None, or why it was not drawn."""
    if result.samples["sgd"].n < 2:
        return f"fewer than 2 SGD replicas left to show ({result.status})"
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    draw_density_panel(ax, result)
    add_footer(fig, settings(result))
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    folder.save_figure(fig, "density", "histograms of the final v of SGD and the SDE with the predicted "
                                       "density and the KS distances", tight=False)
    return None


def _draw_run(ax: Any, name: str, run: BalanceRun, result: BalanceResult) -> None:
    """Mean ``log|u_k^2 - u_{k+1}^2|`` of one run; for SGD also the law of balance along its paths
    and, where available (teacher data), the exact finite-step prediction (docs/theory.md §6d)."""
    styles = {"sgd": "C0-", "sde": "C1--", "gradient_flow": "k:"}
    names = {"sgd": "SGD", "sde": "SDE (Euler-Maruyama)", "gradient_flow": "gradient flow"}
    ok = ~run.diverged
    pairs = run.imbalance.shape[2]
    config = result.config
    for k in range(pairs):
        remainder = None
        if name == "sgd" and run.others is not None:
            net, data, _ = build(config)
            remainder = sgd_finite_step_remainder(data, result.lr, config.batch, result.moments, result.T, net,
                                                  run.v[:, ok], run.others[:, ok, k])
        y = np.mean(np.log(np.abs(run.imbalance[:, ok, k])), axis=1)
        ax.plot(run.times, y - y[0], styles[name], lw=1.2, marker=(None, "^", "s", "v", "D")[k % 5], ms=4,
                markevery=max(1, run.times.size // 8), label=names[name] + (f", layers {k},{k + 1}" if pairs > 1 else ""))
        if name == "sgd":
            path = theory.predicted_log_imbalance(result.moments, result.T, config.weight_decay,
                                                  run.integrals[:, ok, k], run.times[:, None])
            ax.plot(run.times, path.mean(axis=1), color="grey", lw=3, alpha=0.4,
                    label="law of balance along the SGD paths" if k == 0 else None)
        if remainder is not None:
            exact = theory.predicted_log_imbalance(result.moments, result.T, config.weight_decay,
                                                   run.integrals[:, ok, k], run.times[:, None], discrete=True)
            exact = exact - cumulative_trapezoid(remainder, run.times, axis=0, initial=0.0)
            ax.plot(run.times, exact.mean(axis=1), "C2:", lw=2,
                    label="exact SGD step along the SGD paths" if k == 0 else None)


def rate_lines(result: BalanceResult) -> list[str]:
    """Decay rates of layers 0,1, measured against each prediction, with z = (measured - predicted)/s.e."""
    if result.balance is None:
        return []
    lines = []
    for name, pairs in (("SGD", result.balance.pairs), ("SDE", result.balance.sde)):
        if not pairs:
            continue
        p = pairs[0]
        parts = [f"{name}: measured {p.measured:.6f} ± {p.measured_se:.1g}"]
        for key, label in (("predicted", "law"), ("predicted_discrete", "law + 1st order"),
                           ("predicted_finite_step", "exact step" if name == "SGD" else "EM to 2nd order")):
            value, se = getattr(p, key), getattr(p, key + "_difference_se")
            if value is not None:
                parts.append(f"{label} {value:.6f} (z = {(p.measured - value) / se:+.1f})")
        lines.append(" | ".join(parts))
    return lines


def save_balance(result: BalanceResult, folder: ResultFolder) -> None:
    """``balance.png``: mean ``log|u_k^2 - u_{k+1}^2|`` against time, with the law of balance (docs/theory.md §6a)
    and, below, the decay rates measured against the law and its finite-step corrections (§6d)."""
    fig, ax = plt.subplots(figsize=(7, 5))
    for name, run in result.balance_runs.items():
        _draw_run(ax, name, run, result)
    ax.set_xlabel("time (lr x steps)")
    ax.set_ylabel("mean log|u_k^2 - u_{k+1}^2| - initial")
    ax.set_title(f"law of balance, D = {result.config.depth}, d = {result.config.width}, T = {result.T:g}",
                 fontsize=9)
    ax.legend(fontsize=7)
    lines = rate_lines(result)
    fig.text(0.01, 0.06, "decay rates of layers 0,1 (1/time), z = (measured - predicted)/s.e.; "
             "EM: the Euler-Maruyama step of the SDE:\n"
             + "\n".join(lines), fontsize=6.5, va="bottom")
    add_footer(fig, settings(result))
    fig.tight_layout(rect=(0, 0.09 + 0.035 * len(lines), 1, 1))
    folder.save_figure(fig, "balance", "mean log|u_k^2 - u_{k+1}^2| against time for SGD, the SDE and "
                                       "gradient flow, with the law of balance (and the exact SGD step) along "
                                       "the SGD paths; the decay rates against each prediction", tight=False)
