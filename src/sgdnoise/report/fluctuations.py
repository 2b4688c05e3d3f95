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

from sgdnoise.report.figures import METHOD_NAMES, add_footer, epoch_method_name, plt
from sgdnoise.report.folder import ResultFolder
from sgdnoise.stats.streaming import Estimate

#: Line style of each theory method (where its prediction is a smooth function of lambda) ...
METHOD_STYLES = {"exact": "-", "kuehn-rosenow": "--", "anticorrelated": (0, (5, 1, 1, 1)),
                 "continuum": ":", "discrete": "-.", "detailed-balance": (0, (1, 3)), "epoch": (0, (3, 1)),
                 "weight-dependent": (0, (2, 1))}
#: ... and its marker (where it is not: one mark per direction).
METHOD_MARKERS = {"exact": "_", "kuehn-rosenow": "x", "anticorrelated": "+", "continuum": "1",
                  "discrete": "2", "detailed-balance": "3", "epoch": "d", "weight-dependent": "^"}
MARKER_LABELS = {"lambda_cross": r"$\lambda_{\rm cross}$", "tau_SGD": r"$\tau_{\rm SGD}$"}
QUANTITIES = (("var_theta", r"Var $\theta_i$"), ("var_v", r"Var $v_i$"), ("tau", r"$\tau_i$"))


@dataclass(frozen=True)
class FluctuationSeries:
    """One sampler's measured fluctuations along the Hessian eigendirections (same order)."""

    eigenvalues: np.ndarray
    var_theta: Estimate
    var_v: Estimate
    tau: Estimate


def is_smooth(x: np.ndarray, y: np.ndarray) -> bool:
    """Whether y is (nearly) a monotone function of x: then it is drawn as a line, else as markers.

    A prediction that depends on more than lambda_i (e.g. on each direction's noise) zigzags when
    joined in the order of lambda; its total variation in log y then exceeds the net change by far.
    """
    order = np.argsort(x)
    logs = np.log(np.abs(np.asarray(y, float)[order]) + 1e-300)
    logs = logs[np.isfinite(logs)]
    if logs.size < 3:
        return True
    return np.abs(np.diff(logs)).sum() <= 1.5 * abs(logs[-1] - logs[0]) + 0.2


def _draw_theory(ax: "plt.Axes", lam: np.ndarray, values: np.ndarray, colour: str, method: str,
                 label: str, smooth: bool) -> None:
    order = np.argsort(lam)
    if smooth:
        ax.plot(lam[order], values[order], color=colour, ls=METHOD_STYLES.get(method, "-"), lw=1.3, label=label)
    else:  # one short horizontal tick per direction: no zigzag through unrelated directions
        marker = METHOD_MARKERS.get(method, "_")  # above the measured points, a dash wider than them
        ax.plot(lam[order], values[order], ls="none", marker=marker, ms=8 if marker == "_" else 5,
                mew=1.2 if marker == "_" else 1.0, mfc="none", color=colour, label=label, zorder=3)


def _draw_series(axes: np.ndarray, colour: str, sampling: str, series: FluctuationSeries,
                 theory: dict[str, dict[str, np.ndarray]]) -> None:
    lam = np.asarray(series.eigenvalues)
    # one style per theory in every panel (the legend is read off the first): a line only where
    # the prediction is smooth in lambda in every panel that shows it
    smooth = {method: all(is_smooth(lam, np.asarray(values[key], float)) for key, _ in QUANTITIES if key in values)
              for method, values in theory.items()}
    for ax, (key, label) in zip(axes, QUANTITIES):
        est = getattr(series, key)
        shown = np.isfinite(est.value) & (est.value > 0) & (lam > 0)
        ax.errorbar(lam[shown], est.value[shown], yerr=2 * np.nan_to_num(est.stderr[shown]),
                    fmt="o", ms=3, color=colour, alpha=0.75, label=f"{sampling}: measured (±2 s.e.)")
        for method, values in theory.items():
            if key in values:
                name = (epoch_method_name(values.get("data_moments"), values.get("start_correction"))
                        if method == "epoch" else METHOD_NAMES.get(method, method))
                _draw_theory(ax, lam, np.asarray(values[key], float), colour, method, f"{sampling}: {name}",
                             smooth[method])
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
                    ax.axhline(value, color="grey", ls=":", lw=1,
                               label=f"{MARKER_LABELS.get(key, key)} = {value:.3g}")
            else:
                ax.axvline(value, color="grey", ls="--", lw=1, label=f"{MARKER_LABELS.get(key, key)} = {value:.3g}")


def plot_fluctuations(folder: ResultFolder, runs: dict[str, FluctuationSeries],
                      theories: dict[str, dict[str, dict[str, np.ndarray]]] | None = None,
                      markers: dict[str, float] | None = None, name: str = "fluctuations",
                      title: str = "Stationary fluctuations along Hessian eigendirections",
                      description: str = "Var theta, Var v, tau against the Hessian eigenvalue, measured "
                                         "(±2 s.e.) and theory", footer: str | None = None) -> Path:
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
    footer : str, optional
        The run's settings, printed along the bottom edge.

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
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=7, frameon=False,
               bbox_to_anchor=(0.5, 0.025 if footer else 0.0))
    fig.suptitle(title)
    if footer:
        add_footer(fig, footer)
    fig.tight_layout(rect=(0, 0.1 + 0.03 * (len(labels) // 3), 1, 1))
    return folder.save_figure(fig, name, description, tight=False)
