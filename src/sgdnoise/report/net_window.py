r"""The figure ``window`` of ``sgdnoise net``: can the window be trusted, how far are the theories, why.

Three panels against the Hessian eigenvalue :math:`\lambda_i`, one colour per sampler:

1. :math:`\mathrm{Var}\,\theta_i` about the window's least-squares line (filled; hollow where
   the window is shorter than 20 relaxation times) and about the window mean (crosses: nothing
   removed), ±2 s.e.;
2. measured / theory for Kühn-Rosenow (circles) and for the weight-dependent-noise prediction
   (triangles, :mod:`sgdnoise.theory.net_noise`), ±2 s.e. of the measurement, a line at 1;
3. the variance of the three parts of the gradient noise along the trajectory
   (:mod:`sgdnoise.experiments.net.mechanism`): at the reference weights, from the mean
   displacement, from the fluctuations.

:math:`\lambda_{\rm cross}` is marked in every panel.
"""
from __future__ import annotations

import numpy as np

from sgdnoise.experiments.net.result import NetResult
from sgdnoise.report.figures import add_footer, plt
from sgdnoise.report.folder import ResultFolder

PART_MARKERS = {"reference": "o", "offset": "s", "fluctuation": "^"}
PART_NAMES = {"reference": "noise at the reference weights", "offset": "from the mean displacement",
              "fluctuation": "from the fluctuations (weight-dependent)"}


def _window_panel(ax: "plt.Axes", lam: np.ndarray, colour: str, sampling: str, fluct) -> None:
    ok = fluct.equilibrated
    for mask, face, note in ((ok, colour, "equilibrated"), (~ok, "none", "not equilibrated")):
        if mask.any():
            ax.errorbar(lam[mask], fluct.var_theta.value[mask], yerr=2 * fluct.var_theta.stderr[mask], fmt="o", ms=4,
                        color=colour, mfc=face, label=f"{sampling}: drift removed ({note})")
    ax.plot(lam, fluct.var_theta_raw.value, "x", ms=4, color=colour, alpha=0.6,
            label=f"{sampling}: about the window mean (no removal)")


def _ratio_panel(ax: "plt.Axes", lam: np.ndarray, colour: str, sampling: str, fluct, result: NetResult) -> None:
    r = result.samplers[sampling]
    theories = {"Kühn-Rosenow": (r.theory["var_theta"], "o")}
    if "lagged" in r.weight_dependent:
        theories["weight-dependent"] = (r.weight_dependent["lagged"]["var_theta"], "^")
    for name, (theory, marker) in theories.items():
        ratio = fluct.var_theta.value / theory
        ax.errorbar(lam, ratio, yerr=2 * fluct.var_theta.stderr / theory, fmt=marker, ms=4, color=colour,
                    mfc=colour if marker == "o" else "none", alpha=0.8, label=f"{sampling}: measured / {name}")


def _mechanism_panel(ax: "plt.Axes", lam: np.ndarray, colour: str, sampling: str, found: dict | None) -> None:
    if found is None:
        return
    for part, marker in PART_MARKERS.items():
        v = found[part]["variance"]
        ax.errorbar(lam, v.value, yerr=2 * v.stderr, fmt=marker, ms=4, color=colour, mfc="none", alpha=0.8,
                    label=f"{sampling}: {PART_NAMES[part]}")


def plot_window(folder: ResultFolder, result: NetResult) -> str | None:
    """Draw the module docstring's figure; return why not when nothing was recorded, else None."""
    measured = result.fluctuations()
    if result.curvature is None or not measured:
        return f"no late phase recorded ({result.status})"
    lam = result.curvature.eigenvalues
    fig, axes = plt.subplots(1, 3, figsize=(15, 6.6))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for colour, (sampling, fluct) in zip(colours, measured.items()):
        _window_panel(axes[0], lam, colour, sampling, fluct)
        _ratio_panel(axes[1], lam, colour, sampling, fluct, result)
        _mechanism_panel(axes[2], lam, colour, sampling, result.samplers[sampling].late_phase.mechanism)
    if all(r.late_phase.mechanism is None for r in result.samplers.values()):
        axes[2].text(0.5, 0.5, "not measured: the trajectory (4 x --noise-epochs x M steps)\nis shorter than 8 x (--max-lag + 1)",
                     ha="center", va="center", transform=axes[2].transAxes, fontsize=9)
    axes[1].axhline(1.0, color="black", lw=0.8)
    titles = ("Var θ over the recorded window", "measured / predicted Var θ",
              "gradient-noise variance along the trajectory, by part")
    ylabels = (r"Var $\theta_i$", r"Var $\theta_i$ measured / theory", r"one-step noise variance along $v_i$")
    for ax, title, ylabel in zip(axes, titles, ylabels):
        ax.axvline(result.lambda_cross, color="grey", ls="--", lw=1, label=rf"$\lambda_{{\rm cross}}$ = "
                   f"{result.lambda_cross:.3g}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(r"Hessian eigenvalue $\lambda_i$")
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.13), frameon=False)
    c = result.config
    add_footer(fig, f"{c.model} on {c.data}, lr {c.lr:g}, beta {c.momentum:g}, S {c.batch}, window {c.epochs} "
                    f"epochs after {c.burn_in_epochs} burn-in; hollow circles (left): window < 20 relaxation "
                    "times; error bars ±2 s.e.")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    folder.save_figure(fig, "window", "Var theta with and without drift removal, measured / theory, "
                                      "noise parts along the trajectory", tight=False)
    return None
