r"""Figures of the Anti-PGD reproductions (docs/antipgd.md): the widening valley and LeNet-5 on digits.

:func:`save_valley` draws the replica means of GD, PGD and Anti-PGD with ±2 s.e. bands against
the predictions of docs/theory.md §7a; :func:`save_lenet` the trace of the Hessian and the test
accuracy after training per method and seed.  Each writes its ``summary.json``.
"""
from __future__ import annotations

import numpy as np
from matplotlib.ticker import FuncFormatter

from sgdnoise.experiments.antipgd.lenet import LenetResult
from sgdnoise.experiments.antipgd.valley import ValleyResult, mean_and_stderr
from sgdnoise.report.figures import add_footer, plt
from sgdnoise.report.folder import ResultFolder

#: Legend names and colours of the methods.
NAMES = {"gd": "GD", "pgd": "PGD (i.i.d. noise)", "anti-pgd": "Anti-PGD (anti-correlated noise)",
         "sgd-epoch": "SGD, epochs (without replacement)", "sgd-with-replacement": "SGD with replacement"}
#: The same on the x axis of the LeNet figure.
SHORT_NAMES = {"gd": "GD", "pgd": "PGD", "anti-pgd": "Anti-PGD", "sgd-epoch": "SGD\nepochs",
               "sgd-with-replacement": "SGD with\nreplacement"}
COLOURS = {"gd": "C0", "pgd": "C1", "anti-pgd": "C2", "sgd-epoch": "C3", "sgd-with-replacement": "C4"}


def _band(ax, step: np.ndarray, values: np.ndarray, method: str) -> None:
    """Replica mean as a line with a ±2 s.e. band (a line alone for one replica)."""
    mean, se = mean_and_stderr(values)
    ax.plot(step, mean, color=COLOURS[method], label=NAMES[method])
    if values.shape[-1] > 1:
        ax.fill_between(step, mean - 2 * se, mean + 2 * se, color=COLOURS[method], alpha=0.3, lw=0)


def _theory(ax, result: ValleyResult, key: str) -> None:
    """Anti-PGD predictions: the moment recursion as markers, the leading order as a dashed line."""
    every = max(1, len(result.moments.step) // 25)
    ax.plot(result.moments.step[1::every], getattr(result.moments, key)[1::every], "o", mfc="none",
            color="k", ms=4, label="Anti-PGD theory: moments of z (§7a)")
    ax.plot(result.leading.step[1:], getattr(result.leading, key)[1:], "--", color="k", lw=1,
            label=r"Anti-PGD theory: GD on $L + \frac{\sigma^2}{2}$tr$\nabla^2 L$ (leading order)")


def _deviation_panel(ax, result: ValleyResult) -> None:
    """Relative error of the two predictions of E tr H(z_n) against the measured mean, ±2 s.e. band."""
    s = result.settings
    step = result.paths["anti-pgd"]["step"][1:]
    mean, se = mean_and_stderr(result.paths["anti-pgd"]["hessian_trace_z"][1:])
    ax.fill_between(step, -200 * se / mean, 200 * se / mean, color="C2", alpha=0.3, lw=0,
                    label="measured: ±2 s.e. around 0")
    for prediction, style, label in ((result.moments, "o", "moments of z (§7a)"),
                                     (result.leading, "--", "GD on the regularised loss (leading order)")):
        predicted = (prediction.u2 + s.dim * prediction.v2)[1:len(step) + 1]
        kwargs = {"mfc": "none", "ms": 3} if style == "o" else {"lw": 1}
        ax.plot(step, 100 * (predicted / mean - 1), style, color="k", label=label, **kwargs)
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_xlabel("step n")
    ax.set_ylabel(r"(predicted $-$ measured) / measured  [%]")
    ax.set_title(r"Anti-PGD: $E\,$tr$\nabla^2 L(z_n)$, $z_n = \theta_n - \xi_n$", fontsize=9)
    ax.legend(loc="lower right")


def save_valley(result: ValleyResult, folder: ResultFolder) -> None:
    """``valley.png``: tr H and loss by step for GD, PGD, Anti-PGD with the theory; the summary."""
    s, summary = result.settings, result.to_summary()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.6))
    for method, path in result.paths.items():
        _band(axes[0], path["step"], path["hessian_trace"], method)
        _band(axes[1], path["step"], path["loss"], method)
    _theory(axes[0], result, "hessian_trace")
    _theory(axes[1], result, "loss")
    lead, corrected = summary["anti_pgd_end_point"]["predicted_leading_order_2_d_sigma2"], \
        summary["anti_pgd_end_point"]["predicted_with_z_scatter"]
    axes[0].axhline(lead, color="C2", ls=":", lw=1)
    axes[0].axhline(2 / s.lr, color="C1", ls=":", lw=1)
    axes[0].text(s.steps, 2 / s.lr * 1.08, r"stability edge $\|u\|^2 = 2/\eta$", ha="right", fontsize=7.5, color="C1")
    axes[0].text(s.steps, lead * 1.12, r"Anti-PGD end point $2d\sigma^2$", ha="right", fontsize=7.5, color="C2")
    flow = summary["gd"]["gradient_flow_prediction"]
    axes[0].plot([s.steps], [flow], "D", color="C0", mfc="none", ms=6,
                 label=r"GD theory: gradient flow, $\|u\|^2 - v^2$ conserved")
    end = summary["anti_pgd_end_point"]
    first = int(s.steps * (1 - s.stationary_fraction))
    axes[0].set_title(f"Anti-PGD, mean over steps {first}-{s.steps}: measured {end['measured_hessian_trace']:.4f} "
                      f"± {2 * end['stderr']:.4f} (2 s.e.),\nmoments of z {end['predicted_by_moments_over_the_same_steps']:.4f}; "
                      f"asymptote {lead:.4f} ({corrected:.4f} with the scatter of z)", fontsize=8)
    axes[0].set_ylabel(r"tr $\nabla^2 L(\theta_n) = \|u\|^2 + d\,v^2$")
    axes[1].set_ylabel(r"loss $L(\theta_n) = \frac{1}{2} v^2 \|u\|^2$")
    axes[1].set_ylim(max(1e-6, 0.2 * np.min(result.moments.loss[1:])), 1e3)  # room for the legend
    axes[1].set_title("GD's loss falls below the panel (to 0)", fontsize=8.5)
    for ax in axes[:2]:
        ax.set_yscale("log")
        ax.set_xlabel("step n")
    handles, labels = axes[0].get_legend_handles_labels()
    axes[0].legend(handles[:3] + handles[5:], labels[:3] + labels[5:], loc="center right", fontsize=7.5,
                   title="replica mean ± 2 s.e.", title_fontsize=8)
    axes[1].legend(handles[3:5], labels[3:5], loc="upper right", fontsize=7.5, title="(both panels)",
                   title_fontsize=7.5)
    _deviation_panel(axes[2], result)
    fig.suptitle(r"Widening valley $L = \frac{1}{2} v^2 \|u\|^2$: GD, PGD and Anti-PGD "
                 "(Orvieto et al. 2022; Kühn & Rosenow Fig. 25)")
    add_footer(fig, f"{s.replicas} replicas each for PGD and Anti-PGD (GD deterministic: one run); d = {s.dim}, "
                    f"lr = {s.lr:g}, sigma = {s.sigma:g}, start u = {s.u0:g}·(1, ..., 1), v = {s.v0:g}; "
                    f"{s.steps} steps recorded every {s.record_every}; bands: mean ± 2 s.e. over replicas; "
                    f"end point: last {s.stationary_fraction:.0%} of the steps; seed {s.seed}; status {result.status}")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    folder.save_figure(fig, "valley", "tr H and loss by step (replica means ± 2 s.e.) against the Anti-PGD "
                                      "theory; relative error of the predictions", tight=False)
    folder.write_summary(summary)


def save_lenet(result: LenetResult, folder: ResultFolder) -> None:
    """``lenet.png``: tr H (Hutchinson, ± 2 s.e.) and test accuracy per method and seed; the summary."""
    s = result.settings
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.4))
    methods = list(result.runs)
    x = np.arange(len(methods))
    for i, method in enumerate(methods):
        runs = result.runs[method]
        jitter = np.linspace(-0.15, 0.15, len(runs)) if len(runs) > 1 else np.zeros(len(runs))
        for ax, key, err in ((axes[0], "trace", "trace_stderr"), (axes[1], "test_accuracy", None),
                             (axes[2], "train_loss", None)):
            sign, shift = (-1.0, 1.0) if key == "test_accuracy" else (1.0, 0.0)  # accuracy drawn as error
            values = shift + sign * np.array([r[key] for r in runs], dtype=float)
            errors = 2 * np.array([r[err] for r in runs], dtype=float) if err else None
            ax.errorbar(x[i] + jitter, values, yerr=errors, fmt="o", color=COLOURS[method], ms=4, alpha=0.6)
            mean, se = result.mean_over_seeds(method, key)
            ax.errorbar([x[i] + 0.3], [shift + sign * mean], yerr=[2 * np.nan_to_num(se)], fmt="s",
                        color=COLOURS[method], ms=6, capsize=3)
    names = []
    for m in methods:
        diverged = sum(r["status"] != "completed" for r in result.runs[m])
        names.append(SHORT_NAMES[m] + (f"\n{diverged} of {len(result.runs[m])}\ndiverged" if diverged else ""))
    for ax, label in zip(axes, (r"tr $\nabla^2 L$ after training (Hutchinson)", "test error (1 − accuracy)",
                                "training loss after training")):
        ax.set_xticks(x, names, fontsize=7.5)
        ax.set_ylabel(label)
        ax.set_yscale("log")
    for ax, key, fmt, what in ((axes[0], "trace", ".2f", "tr H"), (axes[1], "test_accuracy", ".4f", "test accuracy")):
        diff, se, n = result.paired("anti-pgd", key)
        if n:
            ax.text(0.02, 0.02, f"{what}, Anti-PGD − GD, paired by seed ({n}):\n{diff:{fmt}} ± {2 * se:{fmt}} (2 s.e.)",
                    transform=ax.transAxes, ha="left", va="bottom", fontsize=7.5)
    plain = FuncFormatter(lambda value, _: f"{value:g}" if f"{value:g}"[0] in "1235" else "")
    axes[0].yaxis.set_major_formatter(plain)
    axes[0].yaxis.set_minor_formatter(plain)
    axes[0].set_title("circles: seeds (± 2 s.e. of the Hutchinson estimate);\nsquares: mean over seeds ± 2 s.e.",
                      fontsize=8)
    axes[1].set_title("PGD: i.i.d. noise; Anti-PGD: anti-correlated;\nSGD epochs: without replacement", fontsize=8)
    fig.suptitle(f"LeNet-5 on the digits: GD, PGD, Anti-PGD (sigma = {s.sigma:g}) and SGD after "
                 f"{s.pretrain_steps} + {s.steps} steps")
    add_footer(fig, result.footer())
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    folder.save_figure(fig, "lenet", "trace of the Hessian, test error and training loss after training (log scales), "
                                     "per method and seed", tight=False)
    folder.write_summary(result.to_summary())
