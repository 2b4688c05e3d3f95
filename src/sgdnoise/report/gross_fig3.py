"""Figures of Gross et al. Fig. 3: noise-covariance spectra (a, b with inset) and C~ in the Hessian basis (c)."""
from __future__ import annotations

import numpy as np
from matplotlib.colors import LogNorm

from sgdnoise.experiments.linear.gross import FigureResult
from sgdnoise.report.figures import add_footer, plt
from sgdnoise.report.folder import ResultFolder
from sgdnoise.report.gross import finish


def _panel_a(ax, result: FigureResult) -> None:
    a = result.arrays
    for i, key in enumerate(result.data["panel_a"]):
        rank = np.arange(1, len(a[f"a_{key}_sgd"]) + 1)
        ax.plot(rank, a[f"a_{key}_sgd"], color=f"C{i}", lw=1.5, label=f"{key}: along SGD (lr = 0.1)")
        ax.plot(rank, a[f"a_{key}_fixed_w_star"], ".", ms=2, color=f"C{i}", label="batches at fixed $w^*$")
        ax.plot(rank, a[f"b_{key}_exact_mean"], "--", color="k", lw=0.8,
                label="exact C at $w^*$, mean over realisations" if i == 0 else None)
        ax.plot(rank, a[f"a_{key}_averaged_over_stationary_weights"], ":", color=f"C{i}", lw=1,
                label="E C over stationary weights (same data)" if i == 0 else None)
    ax.set(yscale="log", xlabel="rank", ylabel=r"eigenvalue of $C$ / ($\sigma_x^2\sigma_\epsilon^2/S$)",
           title="(a) measured along SGD and at fixed $w^*$ vs theory")
    ax.legend(fontsize=6)


def _panel_b(ax, result: FigureResult) -> None:
    a = result.arrays
    for i, key in enumerate(result.data["panel_b"]):
        rank = np.arange(1, len(a[f"b_{key}_exact_mean"]) + 1)
        for name, ls, label in (("exact", "-", "exact C"), ("hessian_sigma_r", "--", r"$\sigma_r^2 H/S$"),
                                ("hessian_sigma_eps", ":", r"$\sigma_\epsilon^2 H/S$")):
            ax.plot(rank, a[f"b_{key}_{name}_mean"], ls, color=f"C{i}", label=f"{key}: {label}")
            ax.fill_between(rank, a[f"b_{key}_{name}_low"], a[f"b_{key}_{name}_high"], color=f"C{i}", alpha=0.12,
                            lw=0)
    ax.set(yscale="log", xlabel="rank", ylabel=r"eigenvalue / ($\sigma_x^2\sigma_\epsilon^2/S$)",
           title="(b) exact vs Hessian approximation; bands: 5-95 % over realisations")
    ax.legend(fontsize=6, ncol=1)


def _inset(ax, result: FigureResult) -> None:
    ext = result.data["inset_b"]
    for key, ls, name in (("exact", "-", "exact"), ("hessian_sigma_r", "--", r"$\sigma_r^2 H/S$")):
        ax.plot(ext["P_over_N"], ext[f"{key}_max"], ls, marker="o", ms=3, color="C3", label=f"largest, {name}")
        ax.plot(ext["P_over_N"], ext[f"{key}_min"], ls, marker="o", ms=3, color="C4", label=f"smallest, {name}")
    ax.set(xscale="log", yscale="log", xlabel="P / N", ylabel="eigenvalue (same units)",
           title="(inset of b) extreme eigenvalues, mean over realisations")
    ax.legend(fontsize=7)


def save_fig3(result: FigureResult, folder: ResultFolder) -> None:
    """Fig. 3a, 3b with its inset (one figure) and 3c (a second figure), arrays and summary."""
    c = result.config
    fig_c, ax_c = plt.subplots(figsize=(5.6, 4.8))
    image = ax_c.imshow(result.arrays["c_C_tilde"], norm=LogNorm(vmin=1e-4, vmax=1), cmap="viridis")
    fig_c.colorbar(image, ax=ax_c, label=r"$\tilde C_{ij}$ / max $\tilde C$")
    pc = result.data["panel_c"]
    ax_c.set(xlabel="j (Hessian eigenvector, descending eigenvalue)", ylabel="i",
             title=f"(c) $\\langle|V^T C V|\\rangle$, N/P = {pc['N_over_P']:.2f}, {c['realisations']} realisations")
    add_footer(fig_c, "off-diagonal Frobenius fraction: " + ", ".join(
        f"P/N={k}: {v:.2f}" for k, v in pc["offdiagonal_fraction"].items()))
    fig_c.tight_layout(rect=(0, 0.05, 1, 1))
    folder.save_figure(fig_c, "gross_fig3c", "Fig. 3c: noise covariance in the Hessian basis", tight=False)
    fig, (ax_a, ax_b, ax_i) = plt.subplots(1, 3, figsize=(16, 4.8))
    _panel_a(ax_a, result)
    _panel_b(ax_b, result)
    _inset(ax_i, result)
    add_footer(fig, f"N = {c['N']}, S = {c['S']}, sigma_eps^2 = {c['label_noise']}, with replacement; "
                f"(a) one realisation, {c['sgd_replicas']} SGD runs x {c['sgd_steps']} steps, "
                f"{c['fixed_w_star_batches']} batches at w*; (b) {c['realisations']} realisations; "
                f"sigma_r^2 = |r|^2/P ~ sigma_eps^2 (1 - N/P); seed {c['seed']}")
    finish(result, folder, fig, "gross_fig3", "Fig. 3a, 3b and the inset of 3b")
