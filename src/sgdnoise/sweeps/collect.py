"""One xarray Dataset over a whole sweep (``sgdnoise collect``; docs/sweeps.md).

Dimensions: the swept keys (grid keys, the zip axis, ``seed``) and each
experiment's own dimensions (``direction`` for the per-eigendirection arrays of
``linear``; ``sampling`` for ``demo``; ``sampling`` and ``direction`` for
``net``).  Variables: measured values, their standard errors and the
predictions.  Cells that failed or have not run are NaN.  One small extractor
per experiment reads a cell's result folder; experiments without one get every
numeric value of ``summary.json`` and ``arrays.npz``.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sgdnoise.errors import UsageError
from sgdnoise.sweeps.store import cell_dir, read_record, read_spec

Variables = dict[str, tuple[tuple[str, ...], np.ndarray]]
LINEAR_ARRAYS = ("hessian_eigenvalues", "noise_covariance_eigenvalues", "equilibrated", "var_theta",
                 "var_theta_stderr", "var_v", "var_v_stderr", "tau", "tau_stderr")
LINEAR_SCALARS = ("var_theta_trace", "var_theta_trace_stderr", "loss_excess", "loss_excess_stderr",
                  "steps_measured")


def _float(value: Any) -> np.ndarray:
    """Numbers (None -> NaN, bool -> 0/1) as a float array."""
    array = np.asarray(value, dtype=object)
    return np.vectorize(lambda v: np.nan if v is None else float(v), otypes=[float])(array) \
        if array.size else np.asarray(array, float)


def _name(text: str) -> str:
    return text.replace("-", "_")


def linear(folder: Path) -> Variables:
    """``linear``: per-direction measured, stderr and every theory; traces, z-scores, markers."""
    arrays = np.load(folder / "arrays.npz")
    summary = json.loads((folder / "summary.json").read_text())
    out: Variables = {k: (("direction",), _float(arrays[k])) for k in LINEAR_ARRAYS if k in arrays}
    measured = summary.get("measured", {})
    out.update({k: ((), _float(measured[k])) for k in LINEAR_SCALARS if k in measured})
    theory = summary.get("theory", {})
    for method, values in theory.items():
        if isinstance(values, dict) and "var_theta" in values:
            for quantity in ("var_theta", "var_v", "tau"):
                if quantity in values:
                    out[f"{_name(method)}_{quantity}"] = (("direction",), _float(values[quantity]))
            out[f"{_name(method)}_trace"] = ((), _float(values.get("trace")))
    for method, block in theory.get("comparison", {}).items():
        for key in ("trace_relative_error", "trace_z", "max_abs_z"):
            if key in block:
                out[f"{_name(method)}_{key}"] = ((), _float(block[key]))
    for marker, value in theory.get("markers", {}).items():
        out[_name(marker)] = ((), _float(value))
    return out


def demo(folder: Path) -> Variables:
    """``demo``: the variables of ``linear`` per sampler, along a ``sampling`` dimension."""
    summary = json.loads((folder / "summary.json").read_text())
    samplings = list(summary["runs"])
    runs = [linear(folder / s) for s in samplings]
    out: Variables = {}
    for name in runs[0]:
        dims = runs[0][name][0]
        out[name] = (("sampling", *dims), _stack([r.get(name, (dims, np.nan))[1] for r in runs]))
    out["sampling"] = (("sampling",), np.array(samplings))
    return out


NET_QUANTITIES = ("var_theta", "var_v", "tau")
NET_SCALARS = ("lambda_cross", "tau_sgd", "batches_per_epoch", "n_train", "n_parameters")


def net(folder: Path) -> Variables:
    """``net``: measured Var theta, Var v, tau (± s.e.) and the Kühn-Rosenow prediction per sampler and direction."""
    summary = json.loads((folder / "summary.json").read_text())
    out: Variables = {k: ((), _float(summary.get(k))) for k in NET_SCALARS}
    if "hessian_eigenvalues" in summary:
        out["hessian_eigenvalues"] = (("direction",), _float(summary["hessian_eigenvalues"]))
    measured = summary.get("measured", {})
    samplings = list(measured.get("var_theta", {}))
    if not samplings:  # stopped before any late phase was recorded
        return out
    theory = summary.get("theory", {}).get("kuehn_rosenow", {})
    for quantity in NET_QUANTITIES:
        for name, block in ((quantity, measured.get(quantity, {})),
                            (f"{quantity}_stderr", measured.get(f"{quantity}_stderr", {})),
                            (f"kuehn_rosenow_{quantity}", theory.get(quantity, {}))):
            out[name] = (("sampling", "direction"), _stack([_float(block.get(s)) for s in samplings]))
    out["sampling"] = (("sampling",), np.array(samplings))
    return out


def generic(folder: Path) -> Variables:
    """Any experiment: every numeric leaf of ``summary.json`` and every numeric array of ``arrays.npz``."""
    summary = json.loads((folder / "summary.json").read_text())
    out: Variables = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}_{k}" if prefix else str(k), v)
            return
        try:
            array = _float(value)
        except (TypeError, ValueError):
            return
        out[_name(prefix)] = (tuple(f"{_name(prefix)}_dim{i}" for i in range(array.ndim)), array)

    walk("", {k: v for k, v in summary.items() if k not in ("config", "provenance", "files", "status")})
    if (folder / "arrays.npz").is_file():
        with np.load(folder / "arrays.npz") as arrays:
            for k in arrays.files:
                if arrays[k].dtype.kind in "biuf":
                    out[_name(k)] = (tuple(f"{_name(k)}_dim{i}" for i in range(arrays[k].ndim)),
                                     arrays[k].astype(float))
    return out


#: Extractors by experiment name; experiments not listed use :func:`generic`.
EXTRACTORS: dict[str, Callable[[Path], Variables]] = {"linear": linear, "demo": demo, "net": net}


def _stack(arrays: list[np.ndarray]) -> np.ndarray:
    """Stack arrays of possibly different shapes, padding with NaN (a scalar NaN stands for a missing one)."""
    arrays = [np.asarray(a, float) for a in arrays]
    ndim = max(a.ndim for a in arrays)
    shape = tuple(max(a.shape[k] for a in arrays if a.ndim == ndim) for k in range(ndim))
    out = np.full((len(arrays), *shape), np.nan)
    for i, a in enumerate(arrays):
        if a.ndim == ndim:
            out[(i, *(slice(0, n) for n in a.shape))] = a
        elif a.ndim == 0:
            out[i] = a
    return out


def collect(sweep_dir: str | Path) -> Any:
    """The sweep in ``sweep_dir`` as one ``xarray.Dataset`` (see the module docstring)."""
    import xarray as xr

    spec = read_spec(sweep_dir)
    cells, axes = spec.cells(), spec.axes()
    extract = EXTRACTORS.get(spec.experiment, generic)
    shape = tuple(len(v) for v in axes.values())
    found: dict[tuple[int, ...], Variables] = {}
    ids = np.full(shape, "", dtype=object)
    state = np.full(shape, "remaining", dtype=object)
    for cell in cells:
        ids[cell.index] = cell.id
        record = read_record(sweep_dir, cell.id) or {}
        state[cell.index] = record.get("status", "remaining")
        if record.get("status") == "done":
            found[cell.index] = extract(cell_dir(sweep_dir, cell.id) / "result")
    dims = tuple(axes)
    data_vars: dict[str, Any] = {"cell_id": (dims, ids.astype(str)), "cell_status": (dims, state.astype(str))}
    coords: dict[str, Any] = {k: (k, np.asarray(v)) for k, v in axes.items()}
    first_zip = next(iter(spec.zip), None)
    coords.update({k: (first_zip, np.asarray(v)) for k, v in spec.zip.items() if k != first_zip})
    for name in sorted({n for variables in found.values() for n in variables}):
        if name == "sampling":
            coords["sampling"] = next(v for v in found.values() if name in v)[name]
            continue
        own = next(v[name][0] for v in found.values() if name in v)
        values = [v[name][1] if name in v else np.asarray(np.nan) for v in found.values()]
        stacked = _stack(values)
        full = np.full(shape + stacked.shape[1:], np.nan)
        for index, row in zip(found, stacked):
            full[index] = row
        data_vars[name if name not in axes else f"{name}_result"] = (dims + own, full)
    return xr.Dataset(data_vars, coords, attrs={"experiment": spec.experiment,
                                                "swept": ", ".join(axes), "cells": len(cells)})


def write(dataset: Any, path: str | Path, fmt: str = "netcdf") -> Path:
    """Write ``dataset`` as netCDF (h5netcdf) or zarr (format 2: every dtype, strings included,
    has a stable specification there, and other zarr readers open it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "netcdf":
        dataset.to_netcdf(path, engine="h5netcdf")
    elif fmt == "zarr":
        dataset.to_zarr(path, mode="w", zarr_format=2)
    else:
        raise UsageError(f"--format must be netcdf or zarr; got {fmt!r}", name="--format")
    return path
