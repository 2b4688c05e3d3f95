"""Figures and result folders of the sweep showcases (:mod:`sgdnoise.sweeps.showcases`)."""
from __future__ import annotations

import numpy as np

from sgdnoise.report.figures import add_footer, plt
from sgdnoise.report.folder import ResultFolder
from sgdnoise.sweeps.showcases import (NET_BASE, NET_SETTINGS, NET_WINDOW_TAUS, SweepShowcase,
                                        net_equilibrated)


def _write_dataset(result: SweepShowcase, folder: ResultFolder) -> None:
    from sgdnoise.sweeps.collect import write

    folder._atomic("sweep.nc", lambda p: write(result.dataset, p), "the collected sweep (xarray, netCDF)")


def settings_footer(result: SweepShowcase) -> str:
    """The sweep's settings in words: the experiment, its base config, the swept keys, the status."""
    spec = result.spec.to_mapping()
    base = ", ".join(f"{k} = {v}" for k, v in spec.get("base", {}).items())
    swept = ", ".join([*spec.get("grid", {}), *spec.get("zip", {})]) or "none"
    return (f"sweep of `{spec['experiment']}` cells: {base}; swept: {swept} (values per cell in summary.json); "
            f"error bars ±2 s.e.; status: {result.status}")


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
    add_footer(fig, settings_footer(result))
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    folder.save_figure(fig, "lambda_cross", "ratio of epoch to with-replacement Var θ against λ/λ_cross; "
                       "measured λ_1/2 against 3(1−β)S/(lr P)", tight=False)
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
    add_footer(fig, settings_footer(result))
    fig.tight_layout(rect=(0, 0.09, 1, 1))
    folder.save_figure(fig, "gross_fig5", "normalised tr Var θ against P/N: SGD and three theories", tight=False)
    _write_dataset(result, folder)
    folder.write_summary(result.to_summary())


#: Columns of kuehn_rosenow_net.png: (title, label of a setting, indices into NET_SETTINGS).
NET_COLUMNS = (("batch size S varied", lambda s: f"S = {s[0]}", (1, 0, 2)),
               ("learning rate varied", lambda s: f"lr = {s[1]:g}", (4, 0, 3)),
               ("momentum β varied", lambda s: f"β = {s[2]:g}", (5, 0, 6)))
NET_ROWS = (("var_theta", "Var θ_i"), ("var_v", "Var v_i,  v = θ_k − θ_(k−1)"), ("tau", "τ_i (steps)"))


def _net_panel(ax, ds, quantity: str, index: int, colour: str, ok) -> None:
    """One setting in one panel: measured ±2 s.e. per sampler (faint where not equilibrated), theory lines."""
    lam = ds["hessian_eigenvalues"].values[index]
    order = np.argsort(lam)
    for j, sampling in enumerate(str(s) for s in ds["sampling"].values):
        epoch = sampling == "epoch"
        y, err = ds[quantity].values[index, j], ds[f"{quantity}_stderr"].values[index, j]
        for mask, alpha in ((ok[index, j], 1.0), (~ok[index, j], 0.3)):
            ax.errorbar(lam[mask], y[mask], yerr=2 * err[mask], fmt="o" if epoch else "s", ms=3.5, capsize=1.5,
                        color=colour, mfc=colour if epoch else "none", alpha=alpha, lw=0.8)
        ax.plot(lam[order], ds[f"kuehn_rosenow_{quantity}"].values[index, j][order], "-" if epoch else "--",
                color=colour, lw=0.9)
    ax.axvline(float(ds["lambda_cross"].values[index]), color=colour, ls=":", lw=0.9)


def save_kuehn_rosenow_net(result: SweepShowcase, folder: ResultFolder) -> None:
    """``kuehn_rosenow_net.png``: Var theta, Var v, tau against lambda as S, lr and beta vary (Figs. 20-21)."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import NullFormatter

    ds = result.dataset
    if "var_theta" in ds:
        ok = net_equilibrated(ds, NET_BASE["epochs"])
        fig, axes = plt.subplots(3, 3, figsize=(13, 11.5), sharex="col")
        for col, (title, label, indices) in enumerate(NET_COLUMNS):
            handles = []
            for colour, index in zip(("C0", "C1", "C2"), indices):
                for row, (quantity, _) in enumerate(NET_ROWS):
                    _net_panel(axes[row, col], ds, quantity, index, colour, ok)
                handles.append(Line2D([], [], color=colour, marker="o", label=label(NET_SETTINGS[index])))
            axes[0, col].set_title(title)
            axes[0, col].legend(handles=handles, fontsize=7)
            for row, (_, ylabel) in enumerate(NET_ROWS):
                axes[row, col].set(xscale="log", yscale="log", ylabel=ylabel if col == 0 else None)
                axes[row, col].xaxis.set_minor_formatter(NullFormatter())
            axes[-1, col].set_xlabel("Hessian eigenvalue λ_i")
        styles = [Line2D([], [], color="k", marker="o", ls="none", label="epoch, measured ±2 s.e."),
                  Line2D([], [], color="k", marker="s", mfc="none", ls="none",
                         label="with replacement, measured ±2 s.e."),
                  Line2D([], [], color="k", ls="-", label="Kühn-Rosenow, epoch"),
                  Line2D([], [], color="k", ls="--", label="Kühn-Rosenow, with replacement"),
                  Line2D([], [], color="k", ls=":", label="λ_cross = 3(1−β)S/(lr P)"),
                  Line2D([], [], color="k", marker="o", alpha=0.3, ls="none",
                         label=f"faint: window < {NET_WINDOW_TAUS} τ_i (not equilibrated)")]
        fig.legend(handles=styles, loc="lower center", ncol=3, fontsize=8, bbox_to_anchor=(0.5, 0.03))
        add_footer(fig, "LeNet-5 on scikit-learn's digits, smaller than Kühn & Rosenow's runs: "
                   f"{NET_BASE['pretrain_epochs']} pre-training epochs, {NET_BASE['burn_in_epochs']} burn-in + "
                   f"{NET_BASE['epochs']} recorded late-phase epochs per sampler, top k = {NET_BASE['k']} "
                   f"eigenpairs, noise {NET_BASE['noise_epochs']} epochs x {NET_BASE['noise_replicas']} replicas, "
                   "no accuracy trainings; weight decay 0.005, seed "
                   f"{int(result.spec.base.get('seed', 0))}. Centre: S = 64, lr = 0.005, β = 0.9.")
        fig.tight_layout(rect=(0, 0.08, 1, 1))
        folder.save_figure(fig, "kuehn_rosenow_net", "Var θ, Var v and τ against the Hessian eigenvalue for "
                           "several batch sizes, learning rates and momenta, epoch vs with replacement", tight=False)
    _write_dataset(result, folder)
    folder.write_summary(result.to_summary())
