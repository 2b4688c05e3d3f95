"""``ergodicity.png`` of ``ziyin-ergodicity``: sign sectors of a width-2, depth-2 network."""
from __future__ import annotations

from typing import Any

import numpy as np

from sgdnoise.experiments.balance.ergodicity import CASE, ErgodicityResult
from sgdnoise.report.figures import add_footer, plt
from sgdnoise.report.folder import ResultFolder

NAMES = {"sde": "SDE", "sgd": "SGD (lr = T, S = 1)"}
COLOURS = {"sde": "C1", "sgd": "C0"}


def _fractions(ax: Any, result: ErgodicityResult) -> None:
    sectors = sorted(result.sectors["sde"])
    x = np.arange(len(sectors))
    predicted = [result.sectors["sde"][k]["predicted_fraction"] for k in sectors]
    ax.bar(x, predicted, 0.6, color="0.85", label="theory: Binomial(d, 1/2) of the random start, conserved")
    for shift, name in ((-0.12, "sde"), (0.12, "sgd")):
        rows = [result.sectors[name][k] for k in sectors]
        ax.errorbar(x + shift, [r["fraction"] for r in rows], [2 * r["fraction_se"] for r in rows], fmt="o",
                    color=COLOURS[name], ms=4,
                    label=f"{NAMES[name]} at the end ({result.crossings[name]} of {result.replicas} "
                          "replicas changed sector)")
    ax.set(xticks=x, xticklabels=[f"k = {k}" for k in sectors], ylim=(0, 0.75),
           xlabel="sector: paths with the sign of beta_2", ylabel="fraction of replicas",
           title="replicas per sign sector (±2 s.e.)")
    ax.legend(fontsize=7, loc="upper left")


def _sector_density(ax: Any, result: ErgodicityResult, k: int) -> None:
    d = CASE["width"]
    for name in ("sde", "sgd"):
        row = result.sectors[name][k]
        h, dist = row["histogram"], row["distance"]
        ax.stairs(h["density"], h["edges"], color=COLOURS[name], lw=1.2,
                  label=f"{NAMES[name]}: KS {dist['value']:.3f} (crit. {dist['critical']:.3f})")
    other = d if k != d else 1
    own, wrong = result.densities[k], result.densities[other]
    ax.plot(own.v, own.pdf, "k-", lw=1.2, label=f"Theorem 4.2, width {k} (the surviving paths)")
    ax.plot(wrong.v, wrong.pdf, "k:", lw=1.2,
            label=f"Theorem 4.2, width {other} (SDE KS {result.sectors['sde'][k]['distance_other_width']:.3f})")
    edges = result.sectors["sde"][k]["histogram"]["edges"]
    ax.set(xlim=(0, edges[-1]), xlabel="v (final)", ylabel="p(v)",
           title=f"sector k = {k}: {k} of {d} paths of the sign of beta_2")
    ax.legend(fontsize=7)


def _collapse(ax: Any, result: ErgodicityResult) -> None:
    shown = [name for name in ("sde", "sgd") if "collapse" in result.sectors[name][0]]
    if not shown:
        ax.text(0.5, 0.5, "stopped before a second half of records:\nno collapse rate", ha="center",
                va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    for name in shown:
        c = result.collapse_curves[name]
        block = result.sectors[name][0]["collapse"]
        ax.errorbar(c["times"], c["Y"], 2 * c["Y_se"], color=COLOURS[name], lw=1.2,
                    label=f"{NAMES[name]}: rate {block['measured_rate']:.4f} ± {block['measured_rate_se']:.4f}, "
                          f"predicted {block['predicted_rate']:.4f}")
    block = result.sectors[shown[0]][0]["collapse"]
    t = np.asarray(result.collapse_curves[shown[0]]["times"])
    y_end = result.collapse_curves[shown[0]]["Y"][-1]
    ax.plot(t, y_end + block["asymptotic_rate"] * (t - t[-1]), "k--", lw=1,
            label=f"asymptotic rate 2 (D+1) |beta_2| = {block['asymptotic_rate']:.3f}")
    ax.axvspan(*block["window"], color="0.9", zorder=0, label="window of the rates")
    ax.set(xlabel="time (lr x steps)", ylabel="mean of 3 |v_i|^(-1/3) over paths",
           title="sector k = 0: every path collapses, v -> 0")
    ax.legend(fontsize=7, loc="upper left")


def save_ergodicity(result: ErgodicityResult, folder: ResultFolder) -> None:
    """``ergodicity.png``: fractions per sector, the sector densities against Theorem 4.2 with the
    number of surviving paths as width, and the collapse of the sector without such paths."""
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    fig.suptitle("Broken ergodicity: the path signs never change; each sector relaxes to its own distribution",
                 fontsize=11)
    _fractions(axes[0, 0], result)
    _collapse(axes[0, 1], result)
    for ax, k in zip(axes[1], (1, 2)):
        _sector_density(ax, result, k)
    add_footer(fig, f"D = {CASE['depth']}, d = {CASE['width']}, T = {CASE['T']}, {result.replicas} replicas with "
                    f"random path signs, balanced start at v = beta_2/beta_1, {CASE['time']:g} time units; "
                    f"y = x + eps, x ~ N(0, 0.01), eps ~ N(0, 1); seed {result.seed}; error bars ±2 s.e."
                    + ("" if result.status == "completed" else f"; {result.status.upper()}"))
    fig.tight_layout(rect=(0, 0.03, 1, 0.97))
    folder.save_figure(fig, "ergodicity", "replicas per sign sector, sector-conditioned densities of v against "
                                          "Theorem 4.2 with the surviving width, and the collapse of sector 0")
    folder.write_summary(result.to_summary())
