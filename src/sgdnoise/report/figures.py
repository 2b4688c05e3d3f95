"""Figure plumbing shared by every figure: a headless matplotlib, one style, words for the theories.

The style (``sgdnoise.mplstyle`` beside this module) is applied once, here; figures
are saved through :meth:`sgdnoise.report.folder.ResultFolder.save_figure` (PNG and PDF).
Conventions: error bars are ±2 standard errors unless a figure says otherwise; each
figure carries the run's settings in a footer (:func:`add_footer`); legends name the
theories in words (:data:`METHOD_NAMES`).
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

STYLE = Path(__file__).with_name("sgdnoise.mplstyle")
plt.style.use(STYLE)

#: How a legend names each theory (docs/theory.md sections in brackets).
METHOD_NAMES = {
    "exact": "exact finite-lr theory (§3c)",
    "continuum": "continuum Lyapunov (§3a)",
    "discrete": "discrete Lyapunov (§3b)",
    "detailed-balance": "detailed balance (§3a)",
    "anticorrelated": "anti-correlated noise (§3e)",
    "kuehn-rosenow": "Kühn & Rosenow closed form (§3d)",
    "epoch": "epoch theory, approximate (§3k, §3h)",  # epoch_method_name for the other forms
    "weight-dependent": "weight-dependent noise, top k (§3g, network form)",
}



def epoch_method_name(data_moments: str | None, start_correction: bool | None) -> str:
    """Legend name of method ``epoch`` for the form that ran (docs/theory.md §3m): §3k or §3l, with or without §3h."""
    form = "§3l Gaussian moments" if data_moments == "gaussian" else "§3k"
    start = "no §3h correction: S does not divide P" if start_correction is False else "§3h"
    return f"epoch theory, approximate ({form}, {start})"


__all__ = ["METHOD_NAMES", "add_footer", "epoch_method_name", "plt"]


def add_footer(fig: "matplotlib.figure.Figure", text: str) -> None:
    """Write the run's settings (``text``) in small grey type along the bottom edge of ``fig``."""
    fig.text(0.01, 0.005, text, fontsize=6.5, color="0.35", ha="left", va="bottom", wrap=True)
