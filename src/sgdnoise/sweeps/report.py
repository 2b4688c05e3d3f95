"""The HTML page of a sweep folder, or of any result folder (``sgdnoise report DIR``).

For a sweep: the state of every cell, and for each swept key a figure of the
measured trace of Var theta (±2 s.e.) and each theory's trace against that key
(one line per combination of the other axes, seeds averaged; docs/sweeps.md).
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from sgdnoise.errors import UsageError
from sgdnoise.report import html
from sgdnoise.sweeps.collect import collect
from sgdnoise.sweeps.store import SPEC, read_record, read_spec


def _png(fig: Any) -> bytes:
    from sgdnoise.report.figures import plt

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def _seed_mean(values: Any, stderr: Any | None = None) -> tuple[Any, Any]:
    """Mean over ``seed`` (if swept) and its standard error sqrt(sum se^2) / n."""
    if "seed" not in values.dims:
        return values, stderr
    n = values.sizes["seed"]
    se = None if stderr is None else np.sqrt((stderr ** 2).sum("seed", skipna=False)) / n
    return values.mean("seed"), se


def axis_figure(ds: Any, key: str) -> bytes:
    """Measured tr Var theta ±2 s.e. and every theory's trace against swept ``key``."""
    from sgdnoise.report.figures import plt

    measured, se = _seed_mean(ds["var_theta_trace"], ds.get("var_theta_trace_stderr"))
    theories = [n for n in ds.data_vars if n.endswith("_trace") and n != "var_theta_trace"]
    others = [d for d in measured.dims if d != key]
    stacked = measured.stack(_line=others) if others else measured.expand_dims(_line=[0])
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    x = np.asarray(ds[key].values)
    numeric = x.dtype.kind in "iuf"
    xs = x if numeric else np.arange(len(x))
    for i, line in enumerate(stacked["_line"].values):
        label = ", ".join(f"{d}={v}" for d, v in zip(others, np.atleast_1d(line))) if others else "measured"
        y = stacked.sel(_line=line).transpose(key).values
        err = None if se is None else (se.stack(_line=others) if others else se.expand_dims(_line=[0])
                                       ).sel(_line=line).transpose(key).values * 2
        shown = ax.errorbar(xs, y, yerr=err, fmt="o-", capsize=3, label=f"measured {label}")
        for j, name in enumerate(theories):
            t, _ = _seed_mean(ds[name])
            t = t.stack(_line=others).sel(_line=line) if others else t
            ax.plot(xs, t.transpose(key).values, linestyle=["--", ":", "-.", (0, (1, 3)), (0, (5, 1))][j % 5],
                    color=shown[0].get_color(), alpha=0.7, label=f"{name[:-6]}" if i == 0 else None)
    if not numeric:
        ax.set_xticks(xs, [str(v) for v in x])
    ax.set_xlabel(key)
    ax.set_ylabel("tr Var θ")
    ax.set_yscale("log")
    ax.set_title(f"tr Var θ against {key}: measured ±2 s.e. (markers), theories (lines)")
    ax.legend(fontsize=6)
    return _png(fig)


def sweep_page(sweep_dir: str | Path) -> str:
    """The page of a sweep folder."""
    spec, ds = read_spec(sweep_dir), collect(sweep_dir)
    sections = [html.table(("key", "value"), [(k, v) for k, v in spec.to_mapping().items()],
                           "the sweep (sweep.toml)", "spec")]
    rows = []
    for cell in spec.cells():
        record = read_record(sweep_dir, cell.id) or {}
        trace = ds["var_theta_trace"].values[cell.index] if "var_theta_trace" in ds else None
        rows.append([cell.id, record.get("status", "remaining"), cell.point, trace, record.get("attempts"),
                     record.get("wall_seconds"), record.get("error")])
    sections.append(html.table(("cell", "status", "swept values", "tr Var θ", "attempts", "seconds", "error"),
                               rows, "cells", "cells"))
    if "var_theta_trace" in ds:
        for key in (k for k in spec.axes() if k != "seed"):
            sections.append(html.image(axis_figure(ds, key), f"tr Var θ against {key}"))
    versions = next((r["versions"] for c in spec.cells() if (r := read_record(sweep_dir, c.id))), {})
    sections.append(html.table(("what", "version"), sorted(versions.items()), "versions", "versions"))
    return html.page(f"sgdnoise sweep of {spec.experiment}: {sweep_dir}", sections)


def write_report(folder: str | Path, out: str | Path | None = None) -> Path:
    """Write the page of a sweep folder or a result folder to ``out``.

    Default: ``folder/report.html`` for a sweep; ``folder.html`` next to a result folder (a result
    folder holds only what its run wrote, so that the run can be repeated into it).
    """
    folder = Path(folder)
    if (folder / SPEC).is_file():
        text, default = sweep_page(folder), folder / "report.html"
    elif (folder / "summary.json").is_file():
        text, default = html.result_page(folder), folder.parent / f"{folder.name}.html"
    else:
        raise UsageError(f"DIR {str(folder)!r} is neither a sweep folder ({SPEC}) nor a result folder "
                         "(summary.json)", name="DIR")
    out = Path(out) if out is not None else default
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return out
