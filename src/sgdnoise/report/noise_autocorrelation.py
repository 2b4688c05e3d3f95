"""The gradient-noise autocorrelation figure: tr cov(dg_k, dg_{k+h}) / tr C by lag against theory.

The theory is the lag kernel of Kühn & Rosenow eq. 2 (docs/theory.md §2): a delta with
independent steps, -(M - h)/(M (M - 1)) for 1 <= h <= M in epochs.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sgdnoise.report.figures import plt
from sgdnoise.report.folder import ResultFolder
from sgdnoise.stats.streaming import Estimate
from sgdnoise.theory.noise import noise_kernel


@dataclass(frozen=True)
class AutocorrelationSeries:
    """Measured tr cov(dg_k, dg_{k+h}) for h = 0..max_lag, and the epoch length M of its sampler."""

    trace: Estimate
    epoch_length: int


def plot_noise_autocorrelation(folder: ResultFolder, series: dict[str, AutocorrelationSeries],
                               title: str = "Gradient-noise autocorrelation at $w^*$") -> Path:
    """Measured tr cov(dg_k, dg_{k+h}) / tr C by lag against the kernel of Kuehn & Rosenow eq. 2."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for colour, (sampling, ac) in zip(plt.rcParams["axes.prop_cycle"].by_key()["color"], series.items()):
        norm = ac.trace.value[0]
        lags = np.arange(ac.trace.value.size)
        ax.errorbar(lags, ac.trace.value / norm, yerr=2 * ac.trace.stderr / norm, fmt="o", ms=3,
                    color=colour, label=f"{sampling} (measured, ±2 s.e.)")
        ax.plot(lags, noise_kernel(sampling, ac.epoch_length, lags[-1]), color=colour, lw=1,
                label=f"{sampling}: theory" + (f" (M = {ac.epoch_length})" if sampling == "epoch" else ""))
    ax.axhline(0, color="black", lw=0.5)
    ax.set_xlabel("lag h (steps)")
    ax.set_ylabel(r"tr cov($\delta g_k, \delta g_{k+h}$) / tr $C$")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return folder.save_figure(fig, "noise_autocorrelation", "gradient-noise autocorrelation by lag, "
                              "measured (±2 s.e.) against Kühn & Rosenow eq. 2")
