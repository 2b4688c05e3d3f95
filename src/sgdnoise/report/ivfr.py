"""Result folder of ``sgdnoise ivfr`` and its reproductions (docs/ivfr.md).

``summary.json``
    ``layers.<name>`` (measured) and ``theory.<name>`` (linearised theory), schema in docs/ivfr.md;
``arrays.npz``
    per layer ``<name>_variances``, ``<name>_flatness``, ``<name>_curvature`` (R, m) by replica and rank;
``ivfr.png/.pdf``
    per layer, log-log sigma_i^2 against F_i and against k_i: every replica's points, drift modes
    marked, the fitted power laws and the theory's points;
``profiles.png/.pdf``
    the loss along the top principal directions of replica 0, relative to L(<w>), and kappa.
"""
from __future__ import annotations

import numpy as np

from sgdnoise.experiments.ivfr.config import DEFAULTS as IVFR_DEFAULTS
from sgdnoise.experiments.ivfr.results import IvfrResult
from sgdnoise.report.figures import add_footer, plt
from sgdnoise.report.folder import ResultFolder
from sgdnoise.report.terminal import print_written


def _fit_line(ax, x: np.ndarray, y: np.ndarray, exponent: float | None, label: str) -> None:
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if exponent is None or ok.sum() < 2:
        return
    lx, ly = np.log(x[ok]), np.log(y[ok])
    grid = np.linspace(lx.min(), lx.max(), 20)
    ax.plot(np.exp(grid), np.exp(ly.mean() + exponent * (grid - lx.mean())), "k--", label=label)


def draw_layer(axes, name: str, analysis, theory: dict | None) -> None:
    """Two panels of one layer: sigma^2 vs F (psi) and sigma^2 vs k (gamma)."""
    var = analysis.variances
    drift = np.zeros(var.shape[1], bool)
    drift[analysis.drift] = True
    for ax, x, fit, key, xlabel in ((axes[0], analysis.flatness, analysis.psi, "flatness", "flatness $F_i$"),
                                    (axes[1], analysis.curvature, analysis.gamma, "curvature", "curvature $k_i$")):
        ax.loglog(x[:, ~drift].ravel(), var[:, ~drift].ravel(), ".", ms=3, alpha=0.4, label="measured")
        if drift.any():
            ax.loglog(x[:, drift].ravel(), var[:, drift].ravel(), "x", color="C3", label="drift mode")
        exponent = fit["exponent"]
        what = "psi" if key == "flatness" else "gamma"
        shown = None if exponent is None else (-exponent if what == "psi" else exponent)
        _fit_line(ax, x[:, ~drift].ravel(), var[:, ~drift].ravel(), exponent,
                  f"fit {what} = {shown:.2f}" if shown is not None else "")
        if theory and key in theory:
            ax.loglog(theory[key], theory["pca_variances"], "o", mfc="none", color="C2",
                      label=f"theory ({what} = {theory.get(what) or float('nan'):.2f})")
            if "window" in theory:
                m = min(len(theory[key]), len(theory["window"]["windowed"]))
                ax.loglog(theory[key][:m], theory["window"]["windowed"][:m], "+", color="C1",
                          label="theory through the same window (PCA bias)")
        ax.set_xlabel(xlabel)
        ax.tick_params(axis="x", which="minor", labelsize=6, labelrotation=30)
        ax.set_ylabel(r"$\sigma_i^2$")
        ax.set_title(name)
        lo, hi = ax.get_ylim()
        ax.set_ylim(lo, hi * (hi / lo) ** 0.5)  # room above the points for the legend
        ax.legend(fontsize=6.5, loc="upper left", ncol=2)


def settings_footer(result: IvfrResult) -> str:
    """The run's settings in one line (a figure's footer)."""
    st, win = result.settings, result.info.get("window", {})
    size = {key: st.get(key) if st.get(key) is not None else "from data" if st.get("data") else IVFR_DEFAULTS[key]
            for key in ("N", "P", "outputs")}  # what the config left unset: the teacher's defaults or the data's
    return (f"{st.get('model')}: N={size['N']}, P={size['P']}, K={size['outputs']}, h={st.get('hidden')}, "
            f"lr={st.get('lr')}, S={st.get('batch_size')}, momentum={st.get('momentum')}, {st.get('sampling')}, "
            f"{st.get('replicas')} replicas, seed {st.get('seed')}; window: {win.get('snapshots')} snapshots every "
            f"{win.get('every')} steps after {win.get('burn_in')} steps")


def save_ivfr_figure(result: IvfrResult, folder: ResultFolder) -> None:
    names = list(result.layers)
    fig, axes = plt.subplots(len(names), 2, figsize=(9, 3.6 * len(names)), squeeze=False)
    for row, name in zip(axes, names):
        draw_layer(row, name, result.layers[name], result.theory.get(name))
    footer = settings_footer(result)
    if "structure" in result.theory:
        footer += "\nlinearised theory: " + result.theory["structure"]["reading"]
    add_footer(fig, footer)
    fig.tight_layout(rect=(0, (0.1 if "structure" in result.theory else 0.03) / len(names) ** 0.5, 1, 1))
    folder.save_figure(fig, "ivfr", "log-log sigma_i^2 vs F_i and vs k_i per layer, fits and theory", tight=False)


def save_profiles(result: IvfrResult, folder: ResultFolder) -> None:
    names = list(result.profiles)
    fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names):
        prof = result.profiles[name]
        loss0 = prof["loss"][:, prof["loss"].shape[1] // 2]
        for i, (s, L) in enumerate(zip(prof["s"], prof["loss"])):
            ax.plot(s, L / loss0[i], label=rf"$p_{i + 1}$, $\sigma^2$ = {prof['variances'][i]:.2g}")
        ax.axhline(result.settings.get("kappa", np.e), color="k", ls=":", label=r"$\kappa$")
        ax.set_xlabel("s")
        ax.set_ylabel(r"$L(\langle w\rangle + s p_i) / L_0$")
        ax.set_title(name)
        ax.legend(fontsize=7)
    add_footer(fig, settings_footer(result) + "; kappa: the loss ratio that defines the flatness F_i")
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    folder.save_figure(fig, "profiles", "loss profiles along the top principal directions of replica 0",
                       tight=False)


def arrays(result: IvfrResult) -> dict[str, np.ndarray]:
    out = {}
    for name, a in result.layers.items():
        out.update({f"{name}_variances": a.variances, f"{name}_flatness": a.flatness,
                    f"{name}_curvature": a.curvature})
    return out


def save(result: IvfrResult, folder: ResultFolder) -> None:
    """Write ``arrays.npz``, ``ivfr.png``, ``profiles.png`` (when there are layers) and ``summary.json``."""
    if result.layers:
        folder.write_arrays("arrays.npz", arrays(result), "per layer <name>_variances, <name>_flatness, "
                            "<name>_curvature: (R, m) by replica and rank")
        save_ivfr_figure(result, folder)
        save_profiles(result, folder)
    folder.write_summary(result.to_summary())


def show(result: IvfrResult, folder: ResultFolder) -> None:
    """One line per layer: psi and gamma with their intervals, the theory's gamma, drift modes."""
    def fmt(value, ci) -> str:
        return "n/a" if value is None else f"{value:.3g} [{ci[0]:.3g}, {ci[1]:.3g}]" if ci else f"{value:.3g}"

    for name, a in result.layers.items():
        s = a.to_summary()
        th = result.theory.get(name, {})
        print(f"{name}: psi {fmt(s['psi'], s['psi_ci'])}, gamma {fmt(s['gamma'], s['gamma_ci'])}"
              + (f"; theory gamma {fmt(th.get('gamma'), th.get('gamma_ci'))}" if th else "")
              + (f"; drift modes {s['drift_mode']}" if s["drift_mode"] else ""))
    if "structure" in result.theory:
        print("theory: " + result.theory["structure"]["reading"])
    print_written(folder, result.status)
