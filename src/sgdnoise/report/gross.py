"""Figures of the Gross, Raulf & Räth reproductions (Figs. 3a/3b and 5b; arXiv 2311.14120)."""
from __future__ import annotations

import numpy as np

from sgdnoise.experiments.linear.gross import FIG5B_METHODS, SpectraResult
from sgdnoise.report.figures import plt
from sgdnoise.report.folder import ResultFolder


def save_fig3(result: SpectraResult, folder: ResultFolder) -> None:
    """Fig. 3a/3b: noise-covariance spectra per P/N, and the extremes over P/N."""
    fig, (ax_a, ax_b, ax_c) = plt.subplots(1, 3, figsize=(15, 4.3))
    for curve in result.curves.values():
        ratio = curve["P_over_N"]
        rank = np.arange(1, len(curve["exact"]) + 1)
        (line,) = ax_a.plot(rank, curve["measured"], lw=1.5, label=f"P/N = {ratio:g} measured")
        ax_a.plot(rank, curve["exact"], ls="--", color=line.get_color(), label=f"P/N = {ratio:g} exact")
        ax_b.plot(rank, curve["exact"], color=line.get_color(), label=f"P/N = {ratio:g} exact")
        ax_b.plot(rank, curve["hessian_approximation"], ls="--", color=line.get_color(),
                  label=f"P/N = {ratio:g} Hessian approx.")
    ext = result.extremes or {}
    for key, ls in (("exact", "-"), ("hessian_approximation", "--")):
        ax_c.plot(ext["P_over_N"], ext[f"{key}_max"], ls=ls, color="C3", label=f"max, {key}")
        ax_c.plot(ext["P_over_N"], ext[f"{key}_min"], ls=ls, color="C4", label=f"min, {key}")
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
    folder.save_figure(fig, "gross_fig3", "panels (a), (b) and the inset of Fig. 3")
    folder.write_summary(result.to_summary())


def save_fig5b(result: SpectraResult, folder: ResultFolder) -> None:
    """Fig. 5b: weight-covariance spectra per P/N and the trace error of each theory."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for index, curve in enumerate(result.curves.values()):
        ratio = curve["P_over_N"]
        rank = np.arange(1, len(curve["measured"]) + 1)
        (line,) = axes[0].plot(rank, curve["measured"], lw=1.5, label=f"P/N = {ratio:g} measured")
        for method, ls, lw in zip(FIG5B_METHODS, ("--", "-.", ":"), (1.5, 0.8, 0.8)):
            axes[0].plot(rank, curve[method], ls=ls, color=line.get_color(), lw=lw)
        axes[1].errorbar(ratio, 0, yerr=2 * curve["measured_trace_relative_stderr"], color="grey", capsize=3,
                         label="±2 s.e. of the measurement" if index == 0 else None)
        for j, method in enumerate(FIG5B_METHODS):
            axes[1].scatter(ratio, curve["trace_relative_error"][method], color=f"C{j}", marker="os^"[j],
                            label=method if index == 0 else None)
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
    folder.save_figure(fig, "gross_fig5b", "weight-covariance spectra and trace errors")
    folder.write_summary(result.to_summary())
