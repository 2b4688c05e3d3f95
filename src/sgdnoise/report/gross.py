"""Figures of the Gross, Raulf & Räth reproductions (arXiv 2311.14120): Figs. 2 and 4, and shared helpers.

Fig. 3 is drawn by :mod:`sgdnoise.report.gross_fig3`, Fig. 5 by :mod:`sgdnoise.report.gross_fig5`.
Every figure carries its run settings in a footer; error bars and bands say their width.
"""
from __future__ import annotations

import numpy as np

from sgdnoise.experiments.linear.gross import FigureResult
from sgdnoise.experiments.linear.gross_fig2 import random_projector_variances
from sgdnoise.report.figures import add_footer, plt
from sgdnoise.report.folder import ResultFolder


def finish(result: FigureResult, folder: ResultFolder, fig, name: str, description: str) -> None:
    """Save the figure, the arrays and summary.json."""
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    folder.save_figure(fig, name, description, tight=False)
    folder.write_arrays(f"{name}.npz", result.arrays, "the curves of the figure")
    folder.write_summary(result.to_summary())


def save_fig2(result: FigureResult, folder: ResultFolder) -> None:
    """Fig. 2a (N var of the projector's elements against s = P/N) and 2b (ordered K against the i.i.d. law)."""
    a = result.arrays
    fig, (ax_a, ax_b) = plt.subplots(1, 2, figsize=(12, 4.6))
    s = a["s"]
    FIG2A_N, FIG2B_P = [int(v) for v in a["N"]], [int(v) for v in a["P"]]
    fine = np.logspace(np.log10(s[0]), np.log10(s[-1]), 100)
    for i, n in enumerate(FIG2A_N):
        ax_a.plot(s, n * a["offdiagonal_variance"][i], "o", color=f"C{i}", label=f"off-diagonal, N = {n}")
        ax_a.plot(s, n * a["diagonal_variance"][i], "s", mfc="none", color=f"C{i}", label=f"diagonal, N = {n}")
    off, diag = random_projector_variances(fine * 100, 100)
    ax_a.plot(fine, 100 * off, "k-", lw=0.8, label="random projector (N = 100)")
    ax_a.plot(fine, 100 * diag, "k--", lw=0.8)
    fa = result.data["fig2a"]
    ax_a.plot(fine, 0.5 * fine**-1.8, "k:", label=r"$\propto s^{-1.8}$ (caption)")
    ax_a.set(xscale="log", yscale="log", xlabel="s = P / N",
             ylabel=r"N $\times$ variance of the elements of $X^+X$",
             title=f"(a) fitted exponents: off-diag. {fa['fitted_exponent_offdiagonal']:.2f}, "
                   f"diag. {fa['fitted_exponent_diagonal']:.2f}")
    ax_a.legend(fontsize=6, ncol=2)
    for row, p in enumerate(FIG2B_P):
        values = a["sorted_K"][row, :p]
        if np.all(np.isnan(values)):
            continue
        frac = (np.arange(1, p + 1) - 0.5) / p
        color = plt.cm.viridis(row / max(len(FIG2B_P) - 1, 1))
        ax_b.plot(frac, values, color=color, lw=1.2, label=f"P = {p}")
    frac = (np.arange(1, FIG2B_P[-1] + 1) - 0.5) / FIG2B_P[-1]
    ax_b.plot(frac, a[f"iid_{FIG2B_P[-1]}"], "k:", lw=1.5, label=r"i.i.d. $K^{\mu\mu}=\epsilon_\mu^2$")
    ax_b.set(yscale="log", ylim=(1e-6, 30), xlabel=r"rank $\mu$ / P (entries ordered by magnitude)",
             ylabel=r"$K^{\mu\mu} / \sigma_\epsilon^2$ (mean over realisations)",
             title=f"(b) N = 50, {result.config['fig2b']['realisations']} realisations each")
    ax_b.legend(fontsize=7)
    add_footer(fig, f"X^+X read as the P x P projector X(X^T X)^-1 X^T; K = diag(r^2), r = (I - X X^+) eps; "
                f"(a) {result.config['fig2a']['realisations']} realisations per point; seed {result.config['seed']}")
    finish(result, folder, fig, "gross_fig2", "Fig. 2a/2b: projector element variances and ordered K")


def save_fig4(result: FigureResult, folder: ResultFolder) -> None:
    """Fig. 4: modes z_k(t) and the loss, single run and replica mean against the moment recursion."""
    a, d, c = result.arrays, result.data, result.config
    t = a["t"]
    fig, (ax, ax_in) = plt.subplots(1, 2, figsize=(12, 5.6))
    for j, k in enumerate(c["modes"]):
        ax.plot(t[1:], a["z_single"][1:, j], color=f"C{j}", lw=1, label=f"$z_{{{k}}}$, single SGD run")
        ax.plot(t[1:], a["z_theory"][1:, j], "--", color=f"C{j}", lw=1,
                label=rf"$\langle z_{{{k}}}(t)\rangle$, mean (moment recursion)")
        ax.fill_between(t[1:], (a["z_theory"] - a["z_theory_sd"])[1:, j], (a["z_theory"] + a["z_theory_sd"])[1:, j],
                        color=f"C{j}", alpha=0.15, lw=0)
        ax.axhline(d["modes"][f"k={k}"]["z_star"], color=f"C{j}", lw=0.5, ls=":")
    ax.plot([], [], color="0.5", lw=6, alpha=0.3, label="±1 s.d. of a single run (moment recursion)")
    ax.plot([], [], color="0.3", lw=0.5, ls=":", label=r"$z_k^*$ (minimum)")
    ax2 = ax.twinx()
    ax2.plot(t[1:], a["loss_single"][1:], "-.", color="0.4", label="training loss, single run (right axis)")
    ax2.set_ylabel("training loss L")
    ax.set(xscale="log", xlabel="SGD step t", ylabel=r"mode $z_k = V_k^\top w$",
           title=r"(a) modes $z_k(t)$ and the loss during relaxation")
    handles, labels = ax.get_legend_handles_labels()
    more_handles, more_labels = ax2.get_legend_handles_labels()
    ax.legend(handles + more_handles, labels + more_labels, fontsize=6.5, ncol=3, loc="upper center",
              bbox_to_anchor=(0.5, -0.14))
    ax_in.plot(t[1:], a["loss_single"][1:], color="0.4", lw=1, label="loss, single run")
    ax_in.errorbar(t[1:], a["loss_mean"][1:], yerr=2 * a["loss_se"][1:], fmt=".", ms=3, color="C3",
                   label=f"loss, mean of {c['replicas']} runs ±2 s.e.")
    ax_in.plot(t[1:], a["loss_theory"][1:], "k--", label="E L(t) (moment recursion)")
    dev1 = np.abs(a["z_single"][1:, 0] - d["modes"]["k=1"]["z_star"])
    ax_in.plot(t[1:], dev1, color="C0", lw=0.8, label=r"$|z_1(t) - z_1^*|$, single run")
    ax_in.axhline(d["L_stationary_sgd"], color="0.6", lw=2, label=r"$L^*$: stationary SGD loss (§3c)")
    ax_in.axhline(d["L_min"], color="k", lw=0.8, ls=":", label=r"$L(w^*)$ (minimum of the loss)")
    ax_in.set(xscale="log", yscale="log", xlabel="SGD step t", ylabel="loss, |mode deviation|",
              title=f"(b) the loss, log-log; mean vs theory: max {d['max_deviation_loss_replica_mean_in_se']:.1f} s.e.")
    ax_in.legend(fontsize=7)
    add_footer(fig, f"N = {c['N']}, P = {c['P']}, lr = {c['lr']}, S = {c['S']}, sigma_eps^2 = {c['label_noise']}, "
                f"start w = 0, with replacement; k = 1 the largest eigenvalue of H; seed {c['seed']}")
    finish(result, folder, fig, "gross_fig4", "Fig. 4: relaxation of modes and loss")
