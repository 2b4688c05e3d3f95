"""``sgdnoise reproduce epoch-accuracy-map``: figure, table and summary of the epoch-theory accuracy map.

Files:

``epoch_accuracy_map.png/.pdf``
    three panels against the strength of the weight-dependent noise ``lr tr H / (S (1 - beta))``:
    the relative error of the trace, the largest and the median |relative error| over the
    eigendirections, one marker per method, ±2 standard errors of the simulation; open markers:
    the same against the exact reference (§3f, P <= 16, no error bar);
``table.md``
    the same numbers as a Markdown table (what docs/epoch.md shows);
``summary.json``
    every cell: its settings, strength, simulation config, seconds per part, and per method
    ``errors`` (against simulation) and ``exact_errors`` (against §3f, with the simulation's own
    trace z-score and largest |z| against it); a method that failed has ``error`` instead.
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np

from sgdnoise.experiments.linear.epoch_map import METHODS, EpochMap
from sgdnoise.report.figures import METHOD_NAMES, add_footer, plt
from sgdnoise.report.folder import ResultFolder

MARKERS = {"kuehn-rosenow": "s", "anticorrelated": "x", "epoch": "o"}
PANELS = (("trace_relative_error", "trace: theory / simulation − 1", False),
          ("max_abs_relative_error", "largest |relative error| over directions", True),
          ("median_abs_relative_error", "median |relative error| over directions", True))


def _points(result: EpochMap, method: str, key: str, exact: bool) -> tuple[np.ndarray, ...]:
    xs, ys, es = [], [], []
    for cell in result.cells:
        block = cell.exact_errors if exact else cell.errors
        entry = (block or {}).get(method, {})
        if key in entry:
            xs.append(cell.strength)
            ys.append(entry[key])
            es.append(entry.get(f"{key}_stderr", 0.0))
    return np.array(xs), np.array(ys), np.array(es)


def plot_map(result: EpochMap, folder: ResultFolder) -> None:
    """The three panels (module docstring)."""
    fig, axes = plt.subplots(1, 3, figsize=(16, 6.2))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (key, label, log) in zip(axes, PANELS):
        for colour, method in zip(colours, METHODS):
            x, y, e = _points(result, method, key, exact=False)
            ax.errorbar(x, np.abs(y) if log else y, yerr=2 * e, fmt=MARKERS[method], color=colour, ms=6,
                        mfc=colour, label=f"{METHOD_NAMES[method]} vs simulation (±2 s.e.)")
            x, y, _ = _points(result, method, key, exact=True)
            if x.size:
                ax.plot(x, np.abs(y) if log else y, MARKERS[method], color=colour, ms=11, mfc="none",
                        label=f"{METHOD_NAMES[method]} vs exact reference (§3f)")
        ax.set_xscale("log")
        ax.set_xlabel(r"strength of weight-dependent noise  lr tr$H$ / ($S$(1 − β))")
        ax.set_ylabel(label)
        if log:
            ax.set_yscale("log")
        else:
            ax.axhline(0, color="black", lw=0.5)
        for band in (0.05, 0.10) if key != "median_abs_relative_error" else (0.05,):
            for sign in ((1,) if log else (1, -1)):
                ax.axhline(sign * band, color="0.6", lw=0.6, ls=":")
    for cell in result.cells:
        if cell.cell.name:
            y = cell.errors.get("kuehn-rosenow", {}).get("trace_relative_error")
            if y is not None:
                axes[0].annotate(cell.cell.name, (cell.strength, y), textcoords="offset points",
                                 xytext=(4, -10), fontsize=7, color="0.3")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="lower center", ncol=3, bbox_to_anchor=(0.5, 0.03))
    failed = [f"{m} at {c.cell.label} ({c.errors[m]['error'].split(':')[0]})" for c in result.cells
              for m in METHODS if "error" in c.errors[m]]
    note = ("Kühn-Rosenow and anti-correlated coincide direction by direction (Var θ_i depends on the noise "
            "at w* along i only)" + (f"; no prediction: {'; '.join(failed)}" if failed else ""))
    fig.text(0.5, 0.915, note, ha="center", va="top", fontsize=8, color="0.3")
    fig.suptitle("Accuracy of the epoch theories on linear regression (epoch sampling); dotted: ±5 %, ±10 %"
                 + ("" if result.status == "completed" else f" — {result.status}"))
    add_footer(fig, f"teacher-student data, label noise 0.25, seed {result.seed}; {len(result.cells)} cells "
                    "(summary.json lists each); simulation: 16 replicas, >= 12 relaxation times of burn-in and "
                    ">= 60 of measurement; error bars ±2 s.e. (bootstrap over the measured variances for max and median)")
    fig.tight_layout(rect=(0, 0.13, 1, 0.9))
    folder.save_figure(fig, "epoch_accuracy_map", "relative errors of each epoch theory against the strength of "
                       "the weight-dependent noise", tight=False)


def _fmt(entry: dict[str, Any], key: str, sign: str = "") -> str:
    value, stderr = entry[key], entry.get(f"{key}_stderr", 0.0)
    return f"{value:{sign}.1%} ± {stderr:.1%}" if stderr else f"{value:{sign}.1%}"


def table(result: EpochMap) -> str:
    """Markdown: one row per cell and reference, trace / max / median error per method."""
    head = ["cell", "strength", "vs"] + [f"{m}: trace; max; median" for m in METHODS]
    rows = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for cell in result.cells:
        for ref, block in (("simulation", cell.errors), ("exact §3f", cell.exact_errors)):
            if block is None:
                continue
            parts = []
            for m in METHODS:
                e = block[m]
                parts.append("failed: " + e["error"].split(":")[0] if "error" in e else
                             f"{_fmt(e, 'trace_relative_error', '+')}; {_fmt(e, 'max_abs_relative_error')}; "
                             f"{_fmt(e, 'median_abs_relative_error')}")
            rows.append(f"| {cell.cell.label} | {cell.strength:.3f} | {ref} | " + " | ".join(parts) + " |")
    return "\n".join(rows) + "\n"


def summary(result: EpochMap) -> dict[str, Any]:
    cells = []
    for cell in result.cells:
        cells.append({"cell": asdict(cell.cell), "label": cell.cell.label, "strength": cell.strength,
                      "simulation": asdict(cell.simulation), "seconds": cell.seconds,
                      "measured_trace": float(cell.measured.var_theta_trace.value),
                      "measured_trace_stderr": float(cell.measured.var_theta_trace.stderr),
                      "directions_equilibrated": int(cell.measured.equilibrated.sum()),
                      "errors": cell.errors, "exact_errors": cell.exact_errors})
    return {"status": result.status, "config": {"reproduction": "epoch-accuracy-map", "seed": result.seed,
                                                 "methods": list(METHODS)},
            "seconds": result.seconds, "cells": cells}


def save(result: EpochMap, folder: ResultFolder) -> None:
    """Figure, Markdown table, then summary.json."""
    if result.cells:
        plot_map(result, folder)
    folder.write_text("table.md", table(result), "the map as a Markdown table (docs/epoch.md)")
    folder.write_summary(summary(result))
