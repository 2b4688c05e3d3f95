"""Figures and result folders of the sweep showcases (:mod:`sgdnoise.sweeps.showcases`)."""
from __future__ import annotations

import numpy as np

from sgdnoise.report.figures import plt
from sgdnoise.report.folder import ResultFolder
from sgdnoise.sweeps.showcases import SweepShowcase


def _write_dataset(result: SweepShowcase, folder: ResultFolder) -> None:
    from sgdnoise.sweeps.collect import write

    folder._atomic("sweep.nc", lambda p: write(result.dataset, p), "the collected sweep (xarray, netCDF)")


def save_lambda_cross(result: SweepShowcase, folder: ResultFolder) -> None:
    """``lambda_cross.png``: ratios against lambda / lambda_cross, and lambda_1/2 against lambda_cross."""
    ds, rows = result.dataset, result.numbers["settings"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    epoch, wr = ds.sel(sampling="epoch"), ds.sel(sampling="with-replacement")
    for i, row in enumerate(rows):
        lam = epoch["hessian_eigenvalues"].values[i]
        label = f"S={row['batch_size']}, lr={row['lr']:g}, β={row['momentum']:g}"
        left.plot(lam / row["lambda_cross"], epoch["var_theta"].values[i] / wr["var_theta"].values[i],
                  ".", ms=4, label=label)
    left.axhline(0.5, color="k", lw=0.5)
    left.axvline(1.0, color="k", lw=0.5, ls="--")
    left.set(xscale="log", xlabel="λ / λ_cross,  λ_cross = 3(1−β)S/(lr P)",
             ylabel="Var θ (epoch) / Var θ (with replacement)", title="collapse onto one curve")
    left.legend(fontsize=7)
    predicted = np.array([r["lambda_cross"] for r in rows])
    for key, marker, label in (("lambda_half_measured", "o", "measured λ_1/2"),
                               ("lambda_half_kuehn_rosenow", "x", "Kühn-Rosenow theory λ_1/2")):
        right.plot(predicted, [r[key] for r in rows], marker, label=label)
    scale = result.numbers["lambda_half_over_lambda_cross_mean"]
    grid = np.geomspace(predicted.min(), predicted.max(), 10)
    right.plot(grid, scale * grid, "k--", lw=0.8, label=f"λ_1/2 = {scale:.2f} λ_cross")
    right.set(xscale="log", yscale="log", xlabel="λ_cross = 3(1−β)S/(lr P)", ylabel="λ_1/2",
              title="measured crossing against the formula")
    right.legend(fontsize=7)
    folder.save_figure(fig, "lambda_cross", "ratio of epoch to with-replacement Var θ against λ/λ_cross; "
                       "measured λ_1/2 against 3(1−β)S/(lr P)")
    _write_dataset(result, folder)
    folder.write_summary(result.to_summary())


def save_gross_fig5(result: SweepShowcase, folder: ResultFolder) -> None:
    """``gross_fig5.png``: normalised tr Var theta against P/N, measured ±2 s.e. and three theories."""
    traces, ratios = result.numbers["normalised_trace"], result.numbers["P_over_N"]
    measured = np.asarray(traces["measured"]).ravel()
    stderr = np.asarray(traces["measured_stderr"]).ravel()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    ax.errorbar(ratios, measured, yerr=2 * stderr, fmt="ko", capsize=3, label="SGD, ±2 s.e.")
    for method, style in (("exact", "-"), ("continuum", "--"), ("detailed_balance", ":")):
        ax.plot(ratios, np.asarray(traces[method]).ravel(), style, label=method.replace("_", " "))
    ax.set(xscale="log", yscale="log", xlabel="P / N", ylabel="tr Var θ / (lr σ_ε² / 2S)",
           title="Gross et al. Fig. 5 over P/N (sweep)")
    ax.legend()
    folder.save_figure(fig, "gross_fig5", "normalised tr Var θ against P/N: SGD and three theories")
    _write_dataset(result, folder)
    folder.write_summary(result.to_summary())
