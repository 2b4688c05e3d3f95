r"""The trajectory-noise figure: the noise along SGD split at w*, by lag, one panel per sampler.

``trajectory_noise.png/.pdf`` (``sgdnoise linear``, ``sgdnoise demo``): for each part of the split
of docs/theory.md §3i (at w*, weight-dependent, cross terms, total) ``tr C_x(h) / tr C_total(0)``
by lag with ±2 standard errors across replicas, the kernel of Kühn & Rosenow eq. 2 scaled to the
measured variance at w* as a line, and a box with each part's effective strength (the two-sided
lag sum up to ``max_lag``, 1 for white noise of the total's variance, 0 for noise that cancels).
"""
from __future__ import annotations

from pathlib import Path

from sgdnoise.measure.trajectory_noise import PARTS, TrajectoryNoise
from sgdnoise.report.figures import add_footer, plt
from sgdnoise.report.folder import ResultFolder
from sgdnoise.report.noise_autocorrelation import AutocorrelationSeries, draw_autocorrelation
from sgdnoise.theory.noise import noise_kernel

#: How the figure names the parts of the split.
PART_NAMES = {"reference": "at w*: $g_B(w^*) - g(w^*)$", "weight": "weight-dependent: $(H_B - H)(w - w^*)$",
              "cross": "cross terms", "total": "total: $g_B(w) - g(w)$"}


def split_series(noise: TrajectoryNoise, sampling: str, epoch_length: int) -> dict[str, AutocorrelationSeries]:
    """One :class:`AutocorrelationSeries` per part; the part at w* carries the scaled kernel."""
    series = {}
    for part in PARTS:
        est = noise.normalised(part)
        kernel = None
        if part == "reference":
            kernel = est.value[0] * noise_kernel(sampling, epoch_length, noise.max_lag)
        lags = list(range(noise.max_lag + 1))
        series[PART_NAMES[part]] = AutocorrelationSeries(lags, est.value, est.stderr, kernel,
                                                         "Kühn & Rosenow eq. 2, scaled")
    return series


def strength_text(noise: TrajectoryNoise) -> str:
    """Each part's effective strength with its standard error, one line per part."""
    lines = [f"lag sum |h| <= {noise.max_lag} / tr C_total(0)  (white: 1)"]
    for part, entry in noise.strengths().items():
        s, v = entry["strength"], entry["variance"]
        lines.append(f"{part}: {s.value:+.3f} ± {s.stderr:.3f} (lag 0: {v.value:.3f})")
    return "\n".join(lines)


def plot_trajectory_noise(folder: ResultFolder, panels: dict[str, tuple[TrajectoryNoise, int]],
                          footer: str, name: str = "trajectory_noise") -> Path:
    """One panel per sampler: ``panels[sampling] = (noise, epoch_length M)``."""
    fig, axes = plt.subplots(1, len(panels), figsize=(8.2 * len(panels), 6.0), squeeze=False)
    for ax, (sampling, (noise, M)) in zip(axes[0], panels.items()):
        draw_autocorrelation(ax, split_series(noise, sampling, M))
        ax.set_title(f"{sampling} sampling" + (f" (M = {M} steps per epoch)" if sampling == "epoch" else ""))
        ax.set_ylabel(r"tr $C_x(h)$ / tr $C_\mathrm{total}(0)$")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(-0.02, -0.15))
        ax.text(1.0, -0.15, strength_text(noise), transform=ax.transAxes, ha="right", va="top",
                fontsize=7, family="monospace", bbox={"facecolor": "white", "alpha": 0.85, "lw": 0.3})
    noise = next(iter(panels.values()))[0]
    fig.suptitle("Gradient noise along the SGD trajectory, split at $w^*$ (docs/theory.md §3i): "
                 f"{noise.per_replica.shape[0]} replicas x {noise.steps} steps after the burn-in")
    add_footer(fig, footer)
    fig.subplots_adjust(left=0.1, right=0.97, top=0.88, bottom=0.37, wspace=0.25)
    return folder.save_figure(fig, name, tight=False, description="noise along the trajectory by lag, split into the part at w*, "
                                         "the weight-dependent part and their cross terms")


def print_trajectory_noise(label: str, noise: TrajectoryNoise | str) -> None:
    """One line per part: variance fraction and effective strength (or why nothing was measured)."""
    if isinstance(noise, str):
        print(f"{label}: noise along the trajectory not measured ({noise})")
        return
    print(f"{label}: noise along the trajectory, split at w* (lag sums |h| <= {noise.max_lag}; "
          "strength 1 = white noise, 0 = cancels; docs/theory.md §3i)")
    for part, entry in noise.strengths().items():
        v, s = entry["variance"], entry["strength"]
        print(f"  {part:10s} variance {v.value:6.3f}   strength {s.value:+.3f} ± {s.stderr:.3f}")
