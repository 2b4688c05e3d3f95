r"""The noise-autocorrelation figure: tr cov(dg_k, dg_{k+h}) / tr C by lag h, measured and kernel.

One figure for every experiment that measures the gradient noise at fixed weights with a
sampler (``linear``, ``net``): the normalised trace of the lag covariance with ±2 standard
errors, against the kernel :math:`\kappa_h` of docs/theory.md §2 (a delta at h = 0 with
replacement; negative for 1 <= h <= M and summing to zero in epochs).
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from sgdnoise.report.figures import plt
from sgdnoise.report.folder import ResultFolder
from sgdnoise.stats.streaming import Estimate


class AutocorrelationSeries(NamedTuple):
    """One sampler's curve: lags, normalised measurement with standard errors, kernel, its label.

    ``value`` and ``stderr`` are drawn as given (normalise them with :meth:`from_trace`);
    ``kernel`` is :math:`\\kappa_h` at the same lags; ``label`` names the kernel in the legend
    (e.g. ``"theory (M = 20)"``).
    """

    lags: np.ndarray
    value: np.ndarray
    stderr: np.ndarray
    kernel: np.ndarray
    label: str

    @classmethod
    def from_trace(cls, trace: Estimate, kernel: np.ndarray, label: str) -> "AutocorrelationSeries":
        """The series of a measured ``tr cov(dg_k, dg_{k+h})``, h = 0..max_lag, divided by its h = 0 value."""
        norm = trace.value[0]
        return cls(np.arange(trace.value.size), trace.value / norm, trace.stderr / norm, np.asarray(kernel), label)


def _symlog_ticks(linthresh: float, limits: tuple[float, float]) -> list[float]:
    """0 and the powers of ten outside the linear band, within ``limits``: no labels crowd around 0."""
    first = int(np.ceil(np.log10(linthresh)))
    powers = [10.0**k for k in range(first, int(np.ceil(np.log10(max(map(abs, limits))))) + 1)]
    return sorted([0.0] + [t for p in powers for t in (p, -p) if limits[0] <= t <= limits[1]])


def plot_noise_autocorrelation(folder: ResultFolder, series: dict[str, AutocorrelationSeries],
                               name: str = "noise_autocorrelation",
                               title: str = "Gradient-noise autocorrelation at $w^*$",
                               description: str = "noise autocorrelation by lag, measured and theory") -> Path:
    """Measured autocorrelation by lag (points, ±2 s.e.) against the kernel (a dash at each lag), one colour per sampler.

    Parameters
    ----------
    folder : ResultFolder
        Where ``name.png`` and ``name.pdf`` go.
    series : dict
        ``series[sampling]``: an :class:`AutocorrelationSeries` (or a tuple of its fields).

    Returns
    -------
    Path
        The PNG written.
    """
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    draw_autocorrelation(ax, series)
    ax.set_ylabel(r"tr cov($\delta g_k, \delta g_{k+h}$) / tr $C$")
    ax.set_title(title)
    return folder.save_figure(fig, name, description)


def draw_autocorrelation(ax, series: dict[str, AutocorrelationSeries]) -> None:
    """Draw ``series`` on ``ax``: points with ±2 s.e., the kernel as a dash at each lag (none where ``kernel`` is None).

    Uses a symmetric log scale, linear within the smallest non-zero kernel value, when a kernel
    has values other than 0 beyond lag 0 (the epoch tail is tiny next to the lag-0 value).
    """
    for colour, (name, s) in zip(plt.rcParams["axes.prop_cycle"].by_key()["color"], series.items()):
        lags, value, stderr, kernel, label = s
        ax.errorbar(lags, value, yerr=2 * np.asarray(stderr), fmt="o", ms=3, color=colour,
                    label=f"{name} (measured, ±2 s.e.)")
        if kernel is not None:
            ax.plot(lags, kernel, ls="none", marker="_", ms=9, mew=1.4, color=colour,
                    label=f"{name}: {label}, at each lag")
    ax.axhline(0, color="black", lw=0.5)
    small = [abs(k) for s in series.values() if s[3] is not None for k in np.asarray(s[3])[1:] if k != 0]
    if small:  # the epoch tail -(M - h)/(M (M - 1)) is tiny next to the lag-0 value of 1
        linthresh = min(small)
        ax.set_yscale("symlog", linthresh=linthresh)
        ax.set_yticks(_symlog_ticks(linthresh, ax.get_ylim()))
        ax.text(0.99, 0.02, f"symmetric log scale: linear within ±{linthresh:.2g}", transform=ax.transAxes,
                ha="right", va="bottom", fontsize=7, color="0.35")
    ax.set_xlabel("lag h (steps)")
    ax.legend(fontsize=8)
