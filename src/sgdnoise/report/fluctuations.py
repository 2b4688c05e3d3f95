"""The fluctuation figure: Var theta_i, Var v_i and tau_i against the Hessian eigenvalue, with theory.

Shared by ``sgdnoise linear``, ``demo``, ``net`` and the Kühn & Rosenow reproductions.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sgdnoise.report.figures import plt
from sgdnoise.report.folder import ResultFolder
from sgdnoise.stats.streaming import Estimate

METHOD_STYLES = {"exact": "-", "kuehn-rosenow": "--", "anticorrelated": (0, (5, 1, 1, 1)),
                 "continuum": ":", "discrete": "-.", "detailed-balance": (0, (1, 3))}


@dataclass(frozen=True)
class FluctuationSeries:
    """One run's measured fluctuations per direction, with standard errors."""

    eigenvalues: np.ndarray
    var_theta: Estimate
    var_v: Estimate
    tau: Estimate


def plot_fluctuations(folder: ResultFolder, runs: dict[str, FluctuationSeries],
                      theories: dict[str, dict[str, dict[str, np.ndarray]]] | None = None,
                      markers: dict[str, float] | None = None, name: str = "fluctuations",
                      title: str = "Stationary fluctuations along Hessian eigendirections") -> Path:
    """var_theta, var_v and tau against Hessian eigenvalue on log axes, with error bars.

    ``theories[sampling][method]`` holds arrays ``var_theta`` (and optionally
    ``var_v``, ``tau``) to overlay as lines; ``markers`` are vertical lines
    (e.g. ``lambda_cross``) and, for a key starting with ``tau``, horizontal
    lines in the tau panel.
    """
    fig, axes = plt.subplots(1, 3, figsize=(14, 5.2))
    quantities = (("var_theta", r"Var $\theta_i$"), ("var_v", r"Var $v_i$"), ("tau", r"$\tau_i$"))
    for colour, (sampling, res) in zip(plt.rcParams["axes.prop_cycle"].by_key()["color"], runs.items()):
        lam = res.eigenvalues
        for ax, (key, label) in zip(axes, quantities):
            est = getattr(res, key)
            shown = np.isfinite(est.value) & (est.value > 0) & (lam > 0)
            ax.errorbar(lam[shown], est.value[shown], yerr=2 * np.nan_to_num(est.stderr[shown]),
                        fmt="o", ms=3, color=colour, alpha=0.75, label=f"{sampling} (measured, ±2 s.e.)")
            for method, values in ((theories or {}).get(sampling) or {}).items():
                if key in values:
                    order = np.argsort(lam)
                    ax.plot(lam[order], np.asarray(values[key])[order], color=colour,
                            ls=METHOD_STYLES.get(method, "-"), lw=1.2, label=f"{sampling}: {method}")
            if np.any(shown):
                ax.set_xscale("log")
                ax.set_yscale("log")
            ax.set_xlabel(r"Hessian eigenvalue $\lambda_i$")
            ax.set_ylabel(label)
    for key, value in (markers or {}).items():
        for ax in axes:
            if key.startswith("tau"):
                if ax is axes[2]:
                    ax.axhline(value, color="grey", ls=":", lw=1, label=f"{key} = {value:.3g}")
            else:
                ax.axvline(value, color="grey", ls="--", lw=1, label=f"{key} = {value:.3g}")
    handles, labels = axes[0].get_legend_handles_labels()
    extra = [(h, lab) for h, lab in zip(*axes[2].get_legend_handles_labels()) if lab not in labels]
    handles += [h for h, _ in extra]
    labels += [lab for _, lab in extra]
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=7, frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.07 + 0.025 * (len(labels) // 4), 1, 1))
    return folder.save_figure(fig, name, "Var theta_i, Var v_i and tau_i against the Hessian eigenvalue "
                              "lambda_i (measured, ±2 s.e.) with theory", tight=False)
