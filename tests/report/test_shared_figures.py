"""The figures several commands share take plain arrays and write PNG + PDF into a result folder."""
from __future__ import annotations

import numpy as np

from sgdnoise.report.fluctuations import FluctuationSeries, plot_fluctuations
from sgdnoise.report.folder import ResultFolder
from sgdnoise.report.noise_autocorrelation import AutocorrelationSeries, plot_noise_autocorrelation
from sgdnoise.stats.streaming import Estimate


def estimate(values: np.ndarray) -> Estimate:
    return Estimate(values, 0.1 * values)


def test_fluctuations_figure_from_arrays(tmp_path):
    lam = np.logspace(-2, 1, 6)
    runs = {s: FluctuationSeries(lam, estimate(f / lam), estimate(f * np.ones(6)), estimate(2 / lam))
            for s, f in (("epoch", 1.0), ("with-replacement", 2.0))}
    runs["epoch"].var_theta.value[0] = np.nan  # not drawn, no error
    theories = {"epoch": {"kuehn-rosenow": {"var_theta": 1 / lam, "tau": 2 / lam}}}
    folder = ResultFolder(tmp_path / "out").prepare()
    png = plot_fluctuations(folder, runs, theories, {"lambda_cross": 0.3, "tau_SGD": 5.0}, name="fl", title="t")
    assert png == tmp_path / "out" / "fl.png" and png.is_file() and (tmp_path / "out" / "fl.pdf").is_file()
    assert {"fl.png", "fl.pdf"} <= set(folder.files)
    plot_fluctuations(folder, runs)  # no theory, no markers


def test_noise_autocorrelation_figure_from_arrays(tmp_path):
    trace = Estimate(np.array([2.0, -0.2, -0.1, 0.0]), np.full(4, 0.05))
    series = AutocorrelationSeries.from_trace(trace, np.array([1.0, -0.1, -0.05, 0.0]), "theory (M = 3)")
    assert series.value[0] == 1.0 and np.allclose(series.stderr, 0.025)
    folder = ResultFolder(tmp_path / "out").prepare()
    plain = (np.arange(4), np.ones(4), np.zeros(4), np.ones(4), "theory")  # any 5-tuple works too
    png = plot_noise_autocorrelation(folder, {"epoch": series, "with-replacement": plain})
    assert png.is_file() and "noise_autocorrelation.png" in folder.files


def test_a_theory_has_one_style_in_every_panel():
    """A prediction that zigzags in one panel is drawn as markers in all, so the legend (read off
    the first panel) describes every panel."""
    from sgdnoise.report.figures import plt
    from sgdnoise.report.fluctuations import _draw_series

    lam = np.logspace(-2, 1, 8)
    series = FluctuationSeries(lam, estimate(1 / lam), estimate(np.ones(8)), estimate(2 / lam))
    zigzag = 2 / lam * (1 + 4 * (np.arange(8) % 2))
    fig, axes = plt.subplots(1, 3)
    _draw_series(axes, "C0", "epoch", series, {"kuehn-rosenow": {"var_theta": 1 / lam, "tau": zigzag}})
    styles = {ax.get_ylabel(): [line.get_linestyle() for line in ax.get_lines() if "closed form" in line.get_label()]
              for ax in axes}
    plt.close(fig)
    assert styles[r"Var $\theta_i$"] == ["None"] and styles[r"$\tau_i$"] == ["None"]


def test_symlog_ticks_leave_the_linear_band_to_zero():
    from sgdnoise.report.noise_autocorrelation import _symlog_ticks

    assert _symlog_ticks(0.006, (-0.05, 1.0)) == [-0.01, 0.0, 0.01, 0.1, 1.0]
