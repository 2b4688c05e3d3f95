"""Figures of Gross et al. Fig. 5: weight variance against N (a), spectra of M (b), extremes against P (c)."""
from __future__ import annotations

import numpy as np

from sgdnoise.experiments.linear.gross import FigureResult
from sgdnoise.report.figures import add_footer, plt
from sgdnoise.report.folder import ResultFolder
from sgdnoise.report.gross import finish


def save_fig5a(result: FigureResult, folder: ResultFolder) -> None:
    """Fig. 5a: temporal variance, variance across weights, train and test loss against N."""
    a, c = result.arrays, result.config
    fig, (ax, ax_l) = plt.subplots(1, 2, figsize=(12, 4.6))
    if a:
        n = a["N"]
        ax.errorbar(n, a["time_variance"], yerr=2 * a["time_variance_se"], fmt="o-", ms=4,
                    label=r"SGD: $\langle\langle\delta w_i^2\rangle_t\rangle_i$ (±2 s.e.)")
        ax.plot(n, a["conventional"], "k-.", label=r"conventional $\eta\sigma_\epsilon^2/2S$")
        ax.plot(n, a["continuum"], "k:", label=r"continuum $N^{-1}$tr M (§3a)")
        ax.plot(n, a["exact"], "C3--", label=r"exact finite-lr $N^{-1}$tr M (§3c)")
        ax.plot(n, a["across_weights"], "o", color="C2", label=r"across weights at one time $\langle\delta w_i^2\rangle_i$")
        ax.plot(n, a["across_weights_theory"], "C2--", lw=0.8, label="its expectation")
        ax_l.plot(n, a["train_loss"], "o", color="C0", label="train loss (SGD)")
        ax_l.plot(n, a["train_loss_theory"], "C0--", label=r"$L(w^*) + \frac{1}{2}\mathrm{tr}(HM)$")
        ax_l.plot(n, a["test_loss"], "s", color="C1", label="test loss (SGD)")
        ax_l.plot(n, a["test_loss_theory"], "C1--", label="theory, this realisation")
        ax_l.plot(n, a["test_loss_data_average"], "C1:", label="theory, data average")
    ax.set(xlabel="input dimension N", ylabel="weight variance", yscale="log", title=f"(a) P = {c['P']}")
    ax.legend(fontsize=7)
    ax_l.set(xlabel="input dimension N", ylabel="loss", yscale="log", title="train and test loss")
    ax_l.legend(fontsize=7)
    add_footer(fig, f"lr = {c['lr']}, S = {c['S']}, sigma_eps^2 = {c['label_noise']}, {c['replicas']} runs x "
                f"{c['steps']} steps per N, started at w* + N(0, M_exact); seed {c['seed']}")
    finish(result, folder, fig, "gross_fig5a", "Fig. 5a: weight variance against N")


def save_fig5b(result: FigureResult, folder: ResultFolder) -> None:
    """Fig. 5b: measured spectra, exact, detailed balance, conventional line and the estimator band."""
    a, c = result.arrays, result.config
    fig, (ax, ax_e) = plt.subplots(1, 2, figsize=(13, 4.8))
    for i, point in enumerate(result.data["points"]):
        key = f"P/N={point['P_over_N']:g}"
        rank = np.arange(1, len(a[f"{key}_measured"]) + 1)
        ax.plot(rank, a[f"{key}_measured"], color=f"C{i}", lw=1.5, label=f"{key}")
        ax.plot(rank, a[f"{key}_exact"], "--", color=f"C{i}", lw=1)
        ax.plot(rank, a[f"{key}_detailed_balance"], ":", color=f"C{i}", lw=1)
        ax.fill_between(rank, a[f"{key}_estimator_band_low"], a[f"{key}_estimator_band_high"], color=f"C{i}",
                        alpha=0.2, lw=0)
        edges = point["edges"]
        for j, marker in ((0, "^"), (1, "v")):
            ax_e.plot(point["P_over_N"], edges["measured_over_exact"][j], marker, color="C0" if j == 0 else "C1",
                      label=("largest" if j == 0 else "smallest") + ": measured / exact" if i == 0 else None)
            band = edges["estimator_on_exact_band_largest" if j == 0 else "estimator_on_exact_band_smallest"]
            exact = edges["exact"][j]
            ax_e.vlines(point["P_over_N"] * (1.03 if j else 0.97), band[0] / exact, band[1] / exact,
                        color="C0" if j == 0 else "C1", lw=3, alpha=0.4,
                        label="estimator on exact-covariance surrogates (range)" if i == 0 and j == 0 else None)
    ax.axhline(1.0, color="k", ls="-.", lw=1, label=r"conventional $\eta\sigma_\epsilon^2/2S$")
    ax.plot([], [], "k--", label="exact (§3c)")
    ax.plot([], [], "k:", label=r"detailed balance: eig $(\eta/2)H^{-1}C$")
    ax.fill_between([], [], [], color="0.5", alpha=0.2, label="same estimator on surrogates of exact M")
    ax.set(yscale="log", xlabel="rank", ylabel=r"eigenvalue of $M$ / ($\eta\sigma_\epsilon^2/2S$)",
           title="(b) solid: SGD; dashed: exact; dotted: detailed balance")
    ax.legend(fontsize=6, ncol=2)
    ax_e.axhline(1, color="k", lw=0.5)
    ax_e.set(xscale="log", xlabel="P / N", ylabel="spectrum edge / exact",
             title="edges: measured vs the estimator's own spread")
    ax_e.legend(fontsize=7)
    short = ", ".join(f"P/N = {p['P_over_N']:g}: {p['directions_measured_under_50_relaxation_times']}"
                      for p in result.data["points"])
    add_footer(fig, f"N = {c['N']}, lr = {c['lr']}, S = {c['S']}, sigma_eps^2 = {c['label_noise']}, with replacement; "
                f"{c['surrogates']} surrogates; directions measured for < 50 relaxation times ({short}); seed {c['seed']}")
    finish(result, folder, fig, "gross_fig5b", "Fig. 5b: weight-covariance spectra")


def save_fig5c(result: FigureResult, folder: ResultFolder) -> None:
    """Fig. 5c: extreme eigenvalues of M (exact, detailed balance) and moduli of the eigenvalues of Q."""
    a, c = result.arrays, result.config
    fig, ax = plt.subplots(figsize=(7, 4.8))
    x = a["P_over_N"]
    for name, ls, label in (("continuum", "-", "exact (continuum Lyapunov, §3a)"),
                            ("exact", "", "exact finite-lr (§3c)"),
                            ("detailed_balance", ":", r"detailed balance $(\eta/2)H^{-1}C$"),
                            ("Q", "--", r"|eig Q| in units of M")):
        for end, color in (("max", "C3"), ("min", "C0")):
            ax.errorbar(x, a[f"{name}_{end}_mean"], yerr=2 * a[f"{name}_{end}_sd"], ls=ls or "none",
                        marker="o" if not ls else None, ms=3, color=color, capsize=2,
                        label=f"{label}, {'largest' if end == 'max' else 'smallest'}")
    ax.set(xscale="log", yscale="log", xlabel="P / N", ylabel=r"eigenvalue / ($\eta\sigma_\epsilon^2/2S$)",
           title=f"(c) mean over {c['realisations']} realisations, bars ±2 s.d.")
    ax.legend(fontsize=6)
    add_footer(fig, f"N = {c['N']}, lr = {c['lr']}, S = {c['S']}, sigma_eps^2 = {c['label_noise']}; "
                f"Q from M = (lr/2) H^-1 (C + Q); seed {c['seed']}")
    finish(result, folder, fig, "gross_fig5c", "Fig. 5c: extreme eigenvalues of M and of Q against P/N")
