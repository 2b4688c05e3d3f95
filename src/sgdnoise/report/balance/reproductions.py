"""Figures of the Ziyin, Li, Ueda reproductions: densities, fluctuation inversion, tails."""
from __future__ import annotations

from typing import Any

import numpy as np

from sgdnoise.experiments.balance import FIGURE_DATA, TAIL_DATA, DensitiesResult, InversionResult, TailResult
from sgdnoise.experiments.balance.reproductions import DENSITY_CASES, TailDepth, case_name
from sgdnoise.report.balance.panels import draw_density_panel
from sgdnoise.report.figures import add_footer, plt
from sgdnoise.report.folder import ResultFolder


def data_text(data: dict[str, float]) -> str:
    """The teacher of a reproduction in words, for a figure's footer."""
    return (f"data y = {data['slope']:g} x + eps, eps ~ N(0, {data['noise_std']:g}^2), "
            f"x ~ N(0, {data['x_std']:g}^2)")


FIGURE_DATA_TEXT = data_text(FIGURE_DATA)


def save_densities(result: DensitiesResult, folder: ResultFolder, save_case: Any) -> None:
    """``densities.png`` and one ``balance`` result folder per case (``save_case(result, folder)``)."""
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    for ax, case_key in zip(axes.flat, DENSITY_CASES):
        name = case_name(*case_key)
        case = result.cases.get(name)
        if case is not None:
            save_case(case, folder.subfolder(name, f"the balance run of case {name}"))
        if case is not None and case.samples["sgd"].n >= 2:
            draw_density_panel(ax, case)
        else:  # a case a stop request cut short or never started: say so instead of an empty panel
            ax.axis("off")
            ax.text(0.5, 0.5, f"{name}: not measured\n({case.status if case else 'not run: stop requested'})",
                    ha="center", va="center", wrap=True, fontsize=8, transform=ax.transAxes)
    add_footer(fig, f"{FIGURE_DATA_TEXT}; SGD lr = T, S = 1; replicas per case: "
                    f"{', '.join(f'{k} {c.config.replicas}' for k, c in result.cases.items()) or 'none'}; "
                    f"seed {result.seed}; status: {result.status}")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    folder.save_figure(fig, "densities", "p(v) for D = 0, 1 at T = 0.05, 0.5 with SGD and SDE histograms",
                       tight=False)
    folder.write_summary(result.to_summary())


def _draw_variance(ax: Any, result: InversionResult) -> None:
    for (name, curve), style in zip(result.variance_curves.items(), ("C2:", "k-", "C3--")):
        ax.plot(result.variance_grid, curve, style, lw=1.2, label=f"SDE theory, D = {name.lstrip('D')}")
    for name, marker in (("sgd", "o"), ("sde", "s")):
        rows = result.variance[name]
        ax.errorbar([r["T"] for r in rows], [r["variance"] for r in rows],
                    [2 * r["variance_se"] for r in rows], fmt=marker, ms=4, label=f"{name.upper()}, D = 1 (±2 s.e.)")
    if result.sgd_finite_lr is not None:
        points = result.sgd_finite_lr["points"]
        ax.plot([p["T"] for p in points], [p["theory_at_T_eff"] for p in points], "C0x", ms=6,
                label=r"SDE theory at $T_\mathrm{eff}$ (SGD's growth rate at v = 0)")
    ax.axvline(result.T_c, color="grey", lw=0.8)
    ax.set(xlabel="T = lr / S", ylabel="Var v", ylim=(0, 1.2 * max(result.variance_curves["D1"].max(), 0.1)),
           title=f"fluctuation inversion (T_c = {result.T_c:.3f})")
    ax.legend(fontsize=7)


def _draw_growth(ax: Any, result: InversionResult) -> None:
    ax.plot(result.lr_grid, result.sde_growth_curve, "k-", label=r"SDE theory $4\beta_2 - 4T\alpha_3$")
    ax.plot(result.lr_grid, result.sgd_growth_curve, "C0--", label="SGD, lr = T (finite-lr)")
    for name, marker in (("sgd", "o"), ("sde", "s")):
        rows, fit = result.growth[name], result.fits[name]
        ax.errorbar([r["T"] for r in rows], [r["rate"] for r in rows], [2 * r["rate_se"] for r in rows],
                    fmt=marker, ms=4, label=f"{name.upper()} (±2 s.e.): " + (
                        f"$T_c$ = {fit['T_c']:.3f} ± {fit['T_c_se']:.3f}" if fit["T_c"] is not None
                        else "$T_c$ not fitted (fewer than 2 temperatures)"))
    ax.axhline(0, color="grey", lw=0.8)
    ax.axvline(result.T_c, color="grey", lw=0.8)
    ax.set(xlabel="T", ylabel="growth rate of log v at v -> 0", title="phase transition")
    ax.legend(fontsize=7)


def save_inversion(result: InversionResult, folder: ResultFolder) -> None:
    """``inversion.png``: ``Var v`` against ``T`` and the growth rate of ``log v`` near 0 against ``T``."""
    check = result.sgd_finite_lr or {}
    lines = [f"{label}: {check[key]}" for key, label in (
        ("explained_by_T_eff", "SGD (lr = T, S = 1) consistent with the theory at T_eff"),
        ("unexplained", "Not explained by a tested finite-lr correction"))
        if check.get(key)]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8 + 0.3 * len(lines)))
    _draw_variance(ax1, result)
    _draw_growth(ax2, result)
    lines.append(f"{FIGURE_DATA_TEXT}; D = 1, d = 1; SGD lr = T, S = 1; {result.replicas} replicas per "
                 f"temperature; seed {result.seed}; status: {result.status}")
    add_footer(fig, "\n".join(lines))
    fig.tight_layout(rect=(0, 0.05 * len(lines), 1, 1))
    folder.save_figure(fig, "inversion", "Var v against T (fluctuation inversion) and the growth rate of "
                                         "log v near v = 0 against T, whose zero is T_c; what SGD's finite "
                                         "learning rate leaves unexplained", tight=False)
    folder.write_summary(result.to_summary())


def _draw_tail(ax: Any, tail: TailDepth, T: float) -> None:
    centres = 0.5 * (tail.edges[1:] + tail.edges[:-1])
    ax.loglog(centres, tail.sample_density, "C1o", ms=3, label="SDE samples")
    v = np.abs(tail.density.v)
    ax.loglog(v, tail.density.pdf, "k-", lw=1, label="theory")
    anchor = np.searchsorted(v, 300.0)
    ax.loglog(v, tail.density.pdf[anchor] * (v / v[anchor]) ** tail.asymptote, "C3--", lw=1,
              label=f"|v|^{tail.asymptote:g}")
    ax.axvspan(*tail.window, color="grey", alpha=0.15)
    fit = (f"fit {tail.fit['exponent']:.2f} +- {tail.fit['exponent_se']:.2f}" if tail.fit["exponent"] is not None
           else f"no fit ({tail.fit['n']} samples in the window)")
    ax.set(xlim=(1e-2, 1e3), ylim=(1e-9, 10), xlabel="|v|", ylabel="p(v)",
           title=f"D = {tail.depth}, T = {T:.3f}: {fit} vs {tail.expected_window:.2f}")
    ax.legend(fontsize=7)


def save_tail(result: TailResult, folder: ResultFolder) -> None:
    """``tail.png``: tails for ``D = 1, 2`` on log-log axes, and the approach to infinite depth."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    for ax, depth in zip(axes, (1, 2)):
        tail = result.depths.get(f"D{depth}")
        if tail is not None:
            _draw_tail(ax, tail, result.T)
        else:
            ax.axis("off")
            ax.text(0.5, 0.5, f"D = {depth}: not run (stop requested)", ha="center", va="center",
                    transform=ax.transAxes)
    for depth, d in result.finite.items():
        axes[2].loglog(np.abs(d.v), d.pdf, lw=1, label=f"D = {depth}")
    axes[2].loglog(np.abs(result.limit.v), result.limit.pdf, "k--", lw=1.5, label="D = inf")
    axes[2].set(xlim=(1e-2, 1e3), ylim=(1e-9, 10), xlabel="|v|", ylabel="p(v)",
                title=f"infinite depth at T D / d = {result.tau}")
    axes[2].legend(fontsize=7)
    add_footer(fig, f"{data_text(TAIL_DATA)}; SDE samples of {result.replicas} replicas pooled over "
                    f"t = 10.5 .. 210 (400 records); grey band: the fit window; seed {result.seed}; "
                    f"status: {result.status}")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    folder.save_figure(fig, "tail", "p(v) on log-log axes for D = 1, 2 with pooled SDE samples and the fitted "
                                    "exponent; the approach to the infinite-depth limit", tight=False)
    folder.write_summary(result.to_summary())
