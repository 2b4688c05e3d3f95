r"""The result folder of ``sgdnoise net`` and of its reproductions (docs/net.md, "Output folder").

:func:`save` writes ``arrays.npz``, the figures ``fluctuations`` (Var theta, Var v, tau against
lambda, like Kühn & Rosenow Figs. 17, 20, 24; :mod:`sgdnoise.report.fluctuations`),
``noise_autocorrelation`` (:mod:`sgdnoise.report.noise_autocorrelation`), ``spectrum`` and
``training``, then ``summary.json``; :func:`show` prints a few lines.  The widening-valley
reproduction (docs/theory.md §7) is :mod:`sgdnoise.report.antipgd`.
"""
from __future__ import annotations

import numpy as np

from sgdnoise.experiments.net.result import MEASURED, Curvature, NetResult
from sgdnoise.report.figures import add_footer, plt
from sgdnoise.report.fluctuations import FluctuationSeries, plot_fluctuations
from sgdnoise.report.net_window import plot_window
from sgdnoise.report.folder import ResultFolder
from sgdnoise.report.noise_autocorrelation import AutocorrelationSeries, plot_noise_autocorrelation
from sgdnoise.report.terminal import print_written

ARRAY_DOCS = {
    "hessian_eigenvalues": "(k,) descending, at the pre-trained point",
    "hessian_residuals": "(k,) relative residuals ||H v - lambda v|| / |lambda|",
    "noise_covariance_projected": "(k, k) V^T Sigma_1 V, per-example gradient covariance",
    "hessian_spread": "(k, k) S_ij = mean_n (B_n - mean B)_ij^2, B_n = V^T Hessian of example n V",
    "SAMPLING_var_theta, SAMPLING_var_v, SAMPLING_tau (+ _stderr)": "(k,) measured, per eigenvector; var_theta "
                                                                    "about the window's least-squares line",
    "SAMPLING_var_theta_raw, SAMPLING_trend (+ _stderr)": "(k,) var_theta about the window mean (no drift "
                                                          "removed); slope of the projected mean per step",
    "SAMPLING_mean_theta (+ _stderr)": "(k,) mean displacement from the start of the window",
    "SAMPLING_autocorrelation_time, SAMPLING_relaxation_time, SAMPLING_block_length": "(k,) steps: measured "
        "integrated autocorrelation time; max of it and the heavy-ball relaxation time; batch-means block",
    "SAMPLING_equilibrated, SAMPLING_trending, SAMPLING_stationary": "(k,) window >= 20 relaxation times; "
        "|trend| > 3 s.e.; equilibrated and not trending",
    "SAMPLING_theory_var_theta, SAMPLING_theory_var_v, SAMPLING_theory_tau": "(k,) Kuehn-Rosenow",
    "SAMPLING_wd_KERNEL_var_theta, ..._var_v, ..._tau, ..._weight_dependent_share": "(k,) weight-dependent-noise "
        "prediction (theory/net_noise.py), KERNEL white (and epoch for epoch sampling)",
    "SAMPLING_mechanism_PART_variance (+ _stderr)": "(k,) variance of the PART (reference, offset, fluctuation) "
                                                    "of the noise along the trajectory",
    "SAMPLING_mechanism_explained, SAMPLING_mechanism_change_to_noise": "(k,) first-order top-k model against the "
                                                                        "per-example gradients at the end",
    "SAMPLING_noise_autocorrelation (+ _stderr)": "(max_lag + 1, k) projected cov(dg_k, dg_k+h)",
    "SAMPLING_epoch_losses": "mean mini-batch loss per epoch of the late phase",
    "pretrain_epoch_losses": "mean mini-batch loss per epoch of the pre-training",
    "slq_nodes, slq_weights": "(vectors, steps) stochastic Lanczos quadrature",
}


def arrays(result: NetResult) -> dict[str, np.ndarray]:
    """The arrays of ``arrays.npz`` (:data:`ARRAY_DOCS`); SAMPLING with ``_`` for ``-``."""
    out: dict[str, np.ndarray] = {"pretrain_epoch_losses": np.asarray(result.pretrain.epoch_losses)}
    curv = result.curvature
    if curv is None:
        return out
    out.update(hessian_eigenvalues=curv.eigenvalues, hessian_residuals=curv.residuals,
               noise_covariance_projected=curv.noise_covariance, hessian_spread=curv.hessian_spread)
    if curv.spectrum is not None:
        out.update(slq_nodes=curv.spectrum.nodes, slq_weights=curv.spectrum.weights)
    for sampling, r in result.samplers.items():
        key = sampling.replace("-", "_")
        out.update({f"{key}_theory_{name}": values for name, values in r.theory.items()})
        out[f"{key}_noise_autocorrelation"] = r.autocorrelation_per_direction.value
        out[f"{key}_noise_autocorrelation_stderr"] = r.autocorrelation_per_direction.stderr
        out[f"{key}_epoch_losses"] = np.asarray(r.late_phase.epoch_losses)
        fluct = r.late_phase.fluctuations
        for name in MEASURED if fluct is not None else ():
            out[f"{key}_{name}"] = getattr(fluct, name).value
            out[f"{key}_{name}_stderr"] = getattr(fluct, name).stderr
        for name in FLAGS if fluct is not None else ():
            out[f"{key}_{name}"] = getattr(fluct, name)
        for kernel, curves in r.weight_dependent.items():
            out.update({f"{key}_wd_{kernel}_{name}": np.asarray(v) for name, v in curves.items()
                        if name not in ("spectral_radius", "noise_lag_covariance")})
        out.update(_mechanism_arrays(key, r.late_phase.mechanism))
    return out


FLAGS = ("autocorrelation_time", "relaxation_time", "block_length", "equilibrated", "trending", "stationary")


def _mechanism_arrays(key: str, found: dict | None) -> dict[str, np.ndarray]:
    from sgdnoise.experiments.net.mechanism import PARTS

    if found is None:
        return {}
    out = {}
    for part in PARTS:
        out[f"{key}_mechanism_{part}_variance"] = found[part]["variance"].value
        out[f"{key}_mechanism_{part}_variance_stderr"] = found[part]["variance"].stderr
    out.update({f"{key}_mechanism_{name}": v for name, v in found.get("linear_check", {}).items()})
    return out


def footer(result: NetResult) -> str:
    """The run's settings in one line, for the footer of every figure of the folder."""
    c = result.config
    return (f"{c.model} (width {c.width:g}) on {c.data}; batch S = {c.batch}, late-phase lr = {c.lr:g}, "
            f"momentum = {c.momentum:g}, weight decay = {c.weight_decay:g}; pre-training {c.pretrain_epochs} epochs "
            f"(lr {c.pretrain_lr:g}, {c.schedule}), burn-in {c.burn_in_epochs}, recorded {c.epochs} epochs; "
            f"k = {c.k} eigenpairs; {c.dtype}; seed {c.seed}; error bars ± 2 s.e.; status {result.status}")


def plot_spectrum(folder: ResultFolder, curv: Curvature, lam_cross: float, settings: str = "") -> None:
    """SLQ spectral density (smoothed) with the top-k eigenvalues and lambda_cross (docs/theory.md §9)."""
    from sgdnoise.measure.spectrum import SpectralDensity

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    lam = curv.eigenvalues
    if curv.spectrum is not None:
        nodes, weights = curv.spectrum.nodes, curv.spectrum.weights
        top = max(float(nodes.max()), float(lam.max()))
        bottom = min(float(nodes.min()), 0.0)
        grid = np.linspace(bottom, top * 1.05, 600)
        density = SpectralDensity(nodes, weights).density(grid, 0.01 * (top - bottom))
        ax.plot(grid, density, lw=1.2, label="SLQ density (smoothed)")
        ax.set_yscale("log")
        ax.set_ylim(bottom=1e-6 * density.max())
    for value in lam:
        ax.axvline(value, color="C1", lw=0.6, alpha=0.6)
    ax.plot([], [], color="C1", lw=0.6, label=f"top {lam.size} eigenvalues (Lanczos)")
    ax.axvline(lam_cross, color="grey", ls="--", lw=1, label=rf"$\lambda_{{\rm cross}}$ = {lam_cross:.3g}")
    ax.set_xlabel(r"Hessian eigenvalue $\lambda$")
    ax.set_ylabel("spectral density")
    ax.set_title("Hessian spectrum at the pre-trained point")
    ax.legend(fontsize=8)
    if settings:
        add_footer(fig, settings)
        fig.tight_layout(rect=(0, 0.07, 1, 1))
    folder.save_figure(fig, "spectrum", "Hessian spectral density and top eigenvalues", tight=not settings)


def plot_training(folder: ResultFolder, result: NetResult) -> str | None:
    """Mean mini-batch loss per epoch: pre-training, then each sampler's late phase, the burn-in marked.

    Returns why the figure was not drawn (no complete epoch), else None.
    """
    pretrain = result.pretrain.epoch_losses
    late = {sampling: r.late_phase.epoch_losses for sampling, r in result.samplers.items()}
    if not pretrain and not any(late.values()):
        return f"no complete epoch to show ({result.status})"
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    ax.plot(np.arange(1, len(pretrain) + 1), pretrain, color="black", lw=1, label="pre-training")
    for sampling, losses in late.items():
        ax.plot(len(pretrain) + np.arange(1, len(losses) + 1), losses, lw=1, label=f"late phase: {sampling}")
    if any(late.values()):
        c = result.config
        ax.axvline(c.pretrain_epochs, color="grey", ls=":", lw=1, label="end of pre-training")
        ax.axvline(c.pretrain_epochs + c.burn_in_epochs, color="grey", ls="--", lw=1,
                   label=f"end of burn-in ({c.burn_in_epochs} epochs): recording starts")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean mini-batch loss")
    ax.legend(fontsize=8)
    add_footer(fig, footer(result))
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    folder.save_figure(fig, "training", "loss per epoch; the dashed line marks the end of the burn-in", tight=False)
    return None


def plot_measurements(folder: ResultFolder, result: NetResult) -> dict[str, str]:
    """The fluctuation, noise-autocorrelation and spectrum figures (when the curvature was measured).

    Returns the figures not drawn, each with the reason.
    """
    curv = result.curvature
    if curv is None:
        return {name: f"no curvature measured ({result.status})"
                for name in ("fluctuations.png", "noise_autocorrelation.png", "spectrum.png")}
    measured = result.fluctuations()
    not_drawn = {}
    if not measured:
        not_drawn["fluctuations.png"] = f"no late phase recorded ({result.status})"
    else:
        runs = {s: FluctuationSeries(curv.eigenvalues, f.var_theta, f.var_v, f.tau) for s, f in measured.items()}
        theories = {s: {"kuehn-rosenow": result.samplers[s].theory,
                        **({"weight-dependent": result.samplers[s].weight_dependent["lagged"]}
                           if "lagged" in result.samplers[s].weight_dependent else {})} for s in measured}
        plot_fluctuations(folder, runs, theories, {"lambda_cross": result.lambda_cross, "tau_SGD": result.tau_sgd},
                          description="Var theta, Var v, tau against lambda", footer=footer(result))
    M = result.batches_per_epoch
    series = {s: AutocorrelationSeries.from_trace(r.autocorrelation_trace, r.noise_kernel,
                                                  "theory" + (f" (M = {M})" if s == "epoch" else ""))
              for s, r in result.samplers.items()}
    plot_noise_autocorrelation(folder, series, title="Gradient-noise autocorrelation at the pre-trained point",
                               description="projected noise autocorrelation by lag")
    plot_spectrum(folder, curv, result.lambda_cross, footer(result))
    return not_drawn


def save(result: NetResult, folder: ResultFolder) -> None:
    """Write ``arrays.npz``, the figures and ``summary.json`` (docs/net.md).

    A figure that would have empty panels (a run that diverged or was stopped before it had
    anything to show) is not drawn; ``figures_not_drawn`` in the summary says why.
    """
    folder.write_arrays("arrays.npz", arrays(result), ARRAY_DOCS)
    not_drawn = plot_measurements(folder, result)
    reason = plot_training(folder, result)
    if reason is not None:
        not_drawn["training.png"] = reason
    reason = plot_window(folder, result)
    if reason is not None:
        not_drawn["window.png"] = reason
    if (folder.path / "checkpoints").is_dir():
        folder.files["checkpoints/"] = "resume data: a rerun of the same command into this folder resumes from it"
    summary = result.to_summary()
    if not_drawn:
        summary["figures_not_drawn"] = not_drawn
    folder.write_summary(summary)


def _show_trust(result: NetResult, analysis: dict) -> None:
    """Per sampler: the directions not equilibrated or trending in the recorded window, and the loss trend."""
    from sgdnoise.experiments.net.late_phase import TREND_Z, WINDOW_TAUS

    for sampling, fluct in result.fluctuations().items():
        late, k = result.samplers[sampling].late_phase, fluct.equilibrated.size
        bad, trending = analysis["not_equilibrated"][sampling], analysis["trending"][sampling]
        if bad:
            print(f"{sampling}: {len(bad)} of {k} directions not equilibrated (window < {WINDOW_TAUS} relaxation "
                  f"times): {_ranks(bad)}; raise --epochs (summary: analysis.not_equilibrated)")
        if trending:
            print(f"{sampling}: {len(trending)} of {k} directions trend (|slope| > {TREND_Z:g} s.e.; linear drift "
                  f"removed from Var theta): {_ranks(trending)}; raise --burn-in-epochs")
        window = (late.loss_trend or {}).get("window") or {}
        if window.get("z") is not None and abs(window["z"]) > TREND_Z:
            print(f"{sampling}: the loss still trends over the window ({100 * window['relative_change']:+.1f} %, "
                  f"z = {window['z']:.1f})")


def _ranks(indices: list[int]) -> str:
    """Direction ranks (1 = largest eigenvalue), the first few."""
    shown = ", ".join(str(i + 1) for i in indices[:12])
    return f"ranks {shown}{', ...' if len(indices) > 12 else ''}"


def _interval(fit: dict) -> str:
    if fit["exponent"] is None:
        return f"n/a ({fit['directions']} directions)"
    ci = fit["ci95"]
    return f"{fit['exponent']:+.2f} [{ci[0]:+.2f}, {ci[1]:+.2f}] ({fit['directions']} dirs)"


def _show_analysis(analysis: dict) -> None:
    """Slopes, excess loss and its ratio, the gap below lambda_cross and how much the new theory closes."""
    for sampling, fits in analysis["slopes"].items():
        m, kr = fits["measured"], fits["kuehn_rosenow"]
        print(f"{sampling}: slope of log Var theta vs log lambda, equilibrated directions, below lambda_cross "
              f"{_interval(m['below'])} (KR {_interval(kr['below'])}), above {_interval(m['above'])}")
    loss = analysis["excess_loss"]
    for sampling, block in loss.items():
        if sampling != "ratio":
            print(f"{sampling}: excess loss 1/2 sum lambda Var theta (top k) {block['measured']:.3g} "
                  f"+- {block['measured_stderr']:.2g}; KR {block['kuehn_rosenow']:.3g}, "
                  f"weight-dependent {block['weight_dependent']:.3g}")
    if "ratio" in loss:
        r = loss["ratio"]
        print(f"excess loss epoch / with-replacement: measured {r['measured']:.3f} +- {r['measured_stderr']:.3f} "
              f"({100 * (1 - r['measured']):.0f} % reduction), KR {r['kuehn_rosenow']:.3f}, "
              f"weight-dependent {r['weight_dependent']:.3f}")
    for sampling, gap in analysis["gap_below_lambda_cross"].items():
        g = gap["equilibrated"] if gap["equilibrated"]["directions"] else gap["all"]
        which = "equilibrated" if gap["equilibrated"]["directions"] else "all, none equilibrated"
        kr, new = g.get("median_measured_over_kuehn_rosenow"), g.get("median_measured_over_weight_dependent")
        if kr is not None and new is not None:
            closed = g["log_gap_closed"]
            bounds = [f"{name} {g[key]:.3g}" for name, key in (
                ("white", "median_measured_over_weight_dependent_white_kernel"),
                ("epoch-kernel", "median_measured_over_weight_dependent_epoch_kernel")) if g.get(key) is not None]
            print(f"{sampling}: below lambda_cross ({g['directions']} directions, {which}) median measured / theory: "
                  f"KR {kr:.3g}, weight-dependent {new:.3g}" + (f" (bounds: {', '.join(bounds)})" if bounds else "")
                  + ("" if closed is None else f"; {100 * closed:.0f} % of the KR log-gap closed"))
    for sampling, m in analysis.get("mechanism", {}).items():
        part = m["fluctuation"]
        if part.get("low_frequency_ratio_below") is not None and part.get("predicted_low_frequency_ratio_below"):
            print(f"{sampling}: weight-dependent noise along the trajectory (below lambda_cross): variance "
                  f"{part['variance_below']:.3g} (predicted {part['predicted_variance_below']:.3g}), low-frequency "
                  f"ratio S(0)/C(0) {part['low_frequency_ratio_below']:.2f} +- "
                  f"{part['low_frequency_ratio_below_stderr']:.2f} (predicted {part['predicted_low_frequency_ratio_below']:.2f}"
                  f"; noise at fixed weights {m['reference']['low_frequency_ratio_below']:.2f})")


def show(result: NetResult, folder: ResultFolder) -> None:
    """A few lines: eigenvalue range, lambda_cross, the crossover, accuracies, wall time; the files."""
    if result.resumed_from:
        print(f"resumed from {folder.path / 'checkpoints'}:")
        for phase, where in result.resumed_from.items():
            print(f"  {phase}: {where}")
    if result.curvature is not None:
        lam = result.curvature.eigenvalues
        print(f"Hessian: top {len(lam)} eigenvalues {lam[0]:.4g} ... {lam[-1]:.4g}; "
              f"lambda_cross = {result.lambda_cross:.4g}, tau_SGD = {result.tau_sgd:.4g}")
    if result.crossover is not None:
        for side in ("below", "above"):
            block = getattr(result.crossover, side)
            if block.directions:
                print(f"var_theta epoch / with-replacement {side} lambda_cross ({block.directions} directions): "
                      f"measured {block.measured_var_theta_ratio:.3g}, theory {block.theory_var_theta_ratio:.3g}")
    for sampling, acc in (result.accuracy or {}).items():
        if acc.mean is not None:
            se = f" +- {acc.stderr:.4f}" if np.isfinite(acc.stderr) else ""
            print(f"test accuracy {sampling}: {acc.mean:.4f}{se} over {len(acc.test)} seeds")
    analysis = result.to_summary().get("analysis")
    if analysis:
        _show_trust(result, analysis)
        _show_analysis(analysis)
    print(f"wall time {result.wall_seconds:.0f} s")
    if not result.completed:
        print(f"status: {result.status}")
    print_written(folder, result.status)
    if result.status.startswith("interrupted") and (folder.path / "checkpoints").is_dir():
        print(f"to resume, rerun the same command with --out {folder.path}: it continues from "
              f"{folder.path / 'checkpoints'}")
