r"""The fluctuation figure: Var theta_i, Var v_i and tau_i against the Hessian eigenvalue lambda_i.

One figure for every experiment that measures stationary fluctuations along Hessian
eigendirections (``linear``, ``net``, the Kühn-Rosenow reproductions): measured points with
±2 standard errors per sampler, theory curves (docs/theory.md §3), vertical markers such as
:math:`\lambda_{\rm cross}` and horizontal ones such as :math:`\tau_{\rm SGD}` (§3d).
It takes plain arrays (:class:`FluctuationSeries`), not an experiment's result.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sgdnoise.report.figures import plt
from sgdnoise.report.folder import ResultFolder
from sgdnoise.stats.streaming import Estimate

#: Line style of each theory method.
METHOD_STYLES = {"exact": "-", "kuehn-rosenow": "--", "anticorrelated": (0, (5, 1, 1, 1)),
                 "continuum": ":", "discrete": "-.", "detailed-balance": (0, (1, 3)), "epoch": (0, (3, 1, 1, 1, 1, 1))}
QUANTITIES = (("var_theta", r"Var $\theta_i$"), ("var_v", r"Var $v_i$"), ("tau", r"$\tau_i$"))


@dataclass(frozen=True)
class FluctuationSeries:
    """One sampler's measured fluctuations along the Hessian eigendirections (same order)."""

    eigenvalues: np.ndarray
    var_theta: Estimate
    var_v: Estimate
    tau: Estimate


def _draw_series(axes: np.ndarray, colour: str, sampling: str, series: FluctuationSeries,
                 theory: dict[str, dict[str, np.ndarray]]) -> None:
    lam = np.asarray(series.eigenvalues)
    for ax, (key, label) in zip(axes, QUANTITIES):
        est = getattr(series, key)
        shown = np.isfinite(est.value) & (est.value > 0) & (lam > 0)
        ax.errorbar(lam[shown], est.value[shown], yerr=2 * np.nan_to_num(est.stderr[shown]),
                    fmt="o", ms=3, color=colour, alpha=0.75, label=f"{sampling} (measured, ±2 s.e.)")
        for method, values in theory.items():
            if key in values:
                order = np.argsort(lam)
                ax.plot(lam[order], np.asarray(values[key])[order], color=colour,
                        ls=METHOD_STYLES.get(method, "-"), lw=1.2, label=f"{sampling}: {method}")
        if np.any(shown):
            ax.set_xscale("log")
            ax.set_yscale("log")
        ax.set_xlabel(r"Hessian eigenvalue $\lambda_i$")
        ax.set_ylabel(label)


def _draw_markers(axes: np.ndarray, markers: dict[str, float]) -> None:
    """Vertical lines, or for a key starting with ``tau`` a horizontal line in the tau panel."""
    for key, value in markers.items():
        for ax in axes:
            if key.startswith("tau"):
                if ax is axes[2]:
                    ax.axhline(value, color="grey", ls=":", lw=1, label=f"{key} = {value:.3g}")
            else:
                ax.axvline(value, color="grey", ls="--", lw=1, label=f"{key} = {value:.3g}")


def plot_fluctuations(folder: ResultFolder, runs: dict[str, FluctuationSeries],
                      theories: dict[str, dict[str, dict[str, np.ndarray]]] | None = None,
                      markers: dict[str, float] | None = None, name: str = "fluctuations",
                      title: str = "Stationary fluctuations along Hessian eigendirections",
                      description: str = "Var theta, Var v, tau against the Hessian eigenvalue, measured "
                                         "(±2 s.e.) and theory") -> Path:
    """Var theta, Var v and tau against the Hessian eigenvalue on log axes, with error bars.

    Parameters
    ----------
    folder : ResultFolder
        Where ``name.png`` and ``name.pdf`` go.
    runs : dict
        ``runs[sampling]``: the measured :class:`FluctuationSeries`, one colour each.
    theories : dict, optional
        ``theories[sampling][method]`` holds arrays ``var_theta`` (and optionally ``var_v``,
        ``tau``) per direction, drawn as lines in the sampler's colour and the method's style.
    markers : dict, optional
        Vertical lines (e.g. ``lambda_cross``) and, for a key starting with ``tau``,
        horizontal lines in the tau panel (e.g. ``tau_SGD``).
    name, title, description : str
        File name, figure title, what the folder's file list says.

    Returns
    -------
    Path
        The PNG written.
    """
    fig, axes = plt.subplots(1, 3, figsize=(14, 5.2))
    for colour, (sampling, series) in zip(plt.rcParams["axes.prop_cycle"].by_key()["color"], runs.items()):
        _draw_series(axes, colour, sampling, series, (theories or {}).get(sampling) or {})
    _draw_markers(axes, markers or {})
    handles, labels = axes[0].get_legend_handles_labels()
    extra = [(h, lab) for h, lab in zip(*axes[2].get_legend_handles_labels()) if lab not in labels]
    handles += [h for h, _ in extra]
    labels += [lab for _, lab in extra]
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=7, frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.07 + 0.025 * (len(labels) // 4), 1, 1))
    return folder.save_figure(fig, name, description, tight=False)
