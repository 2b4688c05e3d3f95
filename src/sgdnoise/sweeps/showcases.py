"""Reproductions that run through the sweep machinery (``sgdnoise reproduce sweep-...``; docs/sweeps.md).

``sweep-lambda-cross``
    Kühn & Rosenow's crossover curvature lambda_cross = 3 (1 - beta) S / (lr P) (docs/theory.md §3d)
    measured on linear regression with a wide Hessian spectrum (N = 50 features of variances from 1
    down to 1e-3, geometric; P = 1000; a teacher with label noise 0.25, written once as the data file
    of the sweep) at seven settings of batch size, learning rate and momentum (a zip axis: one setting
    changed at a time around S = 10, lr = 0.02, beta = 0.9, so that lambda_cross runs from 0.075 to
    0.3 while lr tr H / (S (1 - beta)) stays below 0.3, far from the noise-driven instability), each
    with epoch and with-replacement sampling (a grid axis).  Measured lambda_cross:
    along the Hessian eigendirections sorted by lambda, the ratio r_i = Var theta_i (epoch) /
    Var theta_i (with replacement) rises from well below 1 (epochs cancel the noise of slow directions)
    to 1; lambda_1/2 is where the running median (5 directions) of r first reaches 1/2, interpolated
    in log lambda.  If the formula holds, lambda_1/2 / lambda_cross is the same at every setting and
    the ratios collapse onto one curve against lambda / lambda_cross.
``sweep-gross-fig5``
    Gross et al. Fig. 5 over P/N: tr Var theta of SGD on teacher-student linear regression (N = 50,
    lr = 0.1, S = 10, sigma_eps^2 = 0.25) against P/N, normalised by lr sigma_eps^2 / (2 S), measured
    (±2 s.e.) against the exact finite-lr solution (§3c), the continuum Lyapunov solution (§3a) and
    detailed balance; a zip axis (P, steps, burn_in) gives each P/N enough steps (30 relaxation
    times of its slowest direction, within 50 000 .. 400 000).

Each runs its sweep in a sweep folder under ``$SGDNOISE_SWEEP_CACHE`` (default
``~/.cache/sgdnoise/sweeps``), so an interrupted reproduction resumes without recomputing a finished
cell (cells are keyed by their complete config), and returns the collected Dataset; the report writes
the figures, ``sweep.nc`` and ``summary.json``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sgdnoise.dynamics.simulator import relaxation_steps
from sgdnoise.problems.linear import LinearRegression
from sgdnoise.sweeps.collect import collect
from sgdnoise.sweeps.grid import SweepSpec
from sgdnoise.sweeps.runner import run_sweep

#: (batch_size, lr, momentum) of sweep-lambda-cross: the centre, then one setting changed at a time.
SETTINGS = ((10, 0.02, 0.9), (5, 0.02, 0.9), (20, 0.02, 0.9), (10, 0.04, 0.9), (10, 0.01, 0.9),
            (10, 0.02, 0.95), (10, 0.02, 0.8))
#: The data of sweep-lambda-cross: N features with geometric variances, P examples.
CROSS_N, CROSS_P = 50, 1000
#: (batch, lr, momentum) of sweep-kuehn-rosenow-net: the centre (net's defaults), then one changed at a time.
NET_SETTINGS = ((64, 0.005, 0.9), (32, 0.005, 0.9), (128, 0.005, 0.9), (64, 0.01, 0.9), (64, 0.0025, 0.9),
                (64, 0.005, 0.8), (64, 0.005, 0.95))
#: The shrunk ``net`` run of every cell (the defaults: 60 pre-training, 100 + 100 late-phase epochs,
#: k = 40, noise 20 epochs x 8 replicas, spectral density, trace and 3 accuracy trainings).
NET_BASE = {"model": "lenet", "data": "digits", "pretrain_epochs": 40, "burn_in_epochs": 50, "epochs": 150,
            "k": 16, "noise_epochs": 5, "noise_replicas": 4, "slq_vectors": 0, "trace_samples": 0,
            "accuracy_seeds": 0}
#: A direction counts as equilibrated when the recorded window holds this many measured tau_i.
NET_WINDOW_TAUS = 20
GROSS_RATIOS = (1.05, 1.2, 1.5, 2.0, 4.0, 10.0)
GROSS = {"N": 50, "lr": 0.1, "batch_size": 10, "label_noise": 0.25}


@dataclass
class SweepShowcase:
    """A sweep's collected Dataset, the spec it ran, and the derived numbers shown."""

    name: str
    spec: SweepSpec
    dataset: Any
    numbers: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        states = self.dataset["cell_status"].values.ravel()
        bad = int((states != "done").sum())
        return "completed" if bad == 0 else f"{bad} of {states.size} cells did not finish (see cell_status)"

    def to_summary(self) -> dict[str, Any]:
        return {"status": self.status, "config": {"experiment": self.name, "sweep": self.spec.to_mapping()},
                **self.numbers}


def sweep_folder(name: str, seed: int) -> Path:
    """Where showcase ``name`` keeps its sweep (resumable; see the module docstring)."""
    root = os.environ.get("SGDNOISE_SWEEP_CACHE") or Path.home() / ".cache" / "sgdnoise" / "sweeps"
    return Path(root) / f"{name}-seed{seed}"


def _run(name: str, spec: SweepSpec, seed: int, progress: bool) -> SweepShowcase:
    folder = sweep_folder(name, seed)
    run_sweep(spec, folder, progress=progress)
    return SweepShowcase(name, spec, collect(folder).load())


def crossing(lam: np.ndarray, ratio: np.ndarray, level: float = 0.5, window: int = 5) -> float:
    """First lambda (ascending) where the running median of ``ratio`` reaches ``level`` (log interpolation)."""
    order = np.argsort(lam)
    lam, ratio = lam[order], ratio[order]
    half = window // 2
    if not np.isfinite(ratio).any():
        return float("nan")
    smooth = np.array([np.nanmedian(ratio[max(0, i - half): i + half + 1]) for i in range(len(ratio))])
    above = np.flatnonzero(smooth >= level)
    if above.size == 0 or above[0] == 0:
        return float("nan")
    i = above[0]
    t = (level - smooth[i - 1]) / (smooth[i] - smooth[i - 1])
    return float(np.exp(np.log(lam[i - 1]) + t * (np.log(lam[i]) - np.log(lam[i - 1]))))


def wide_spectrum_data(seed: int) -> Path:
    """The data file of sweep-lambda-cross (written once next to its sweep folder; same seed, same file)."""
    path = sweep_folder("sweep-lambda-cross", seed).with_name(f"sweep-lambda-cross-seed{seed}-data.npz")
    if not path.is_file():
        gen = np.random.default_rng([seed, 7])
        scale = np.sqrt(np.geomspace(1.0, 1e-3, CROSS_N))
        x = gen.normal(size=(CROSS_P, CROSS_N)) * scale
        y = x @ gen.normal(size=CROSS_N) + gen.normal(0.0, 0.5, size=CROSS_P)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, x=x, y=y)
        os.replace(tmp, path)
    return path


def lambda_cross(seed: int, progress: bool = True) -> SweepShowcase:
    """``sweep-lambda-cross`` (see the module docstring)."""
    spec = SweepSpec.from_mapping({
        "experiment": "linear",
        "base": {"data": str(wide_spectrum_data(seed)), "steps": 60_000, "burn_in": 30_000, "replicas": 16,
                 "max_lag": 0, "seed": seed},
        "grid": {"sampling": ["epoch", "with-replacement"]},
        "zip": {"batch_size": [s[0] for s in SETTINGS], "lr": [s[1] for s in SETTINGS],
                "momentum": [s[2] for s in SETTINGS]}})
    result = _run("sweep-lambda-cross", spec, seed, progress)
    ds = result.dataset
    epoch, wr = ds.sel(sampling="epoch"), ds.sel(sampling="with-replacement")
    rows = []
    for i, (S, lr, beta) in enumerate(SETTINGS):
        lam = epoch["hessian_eigenvalues"].values[i]
        predicted = 3 * (1 - beta) * S / (lr * CROSS_P)
        measured = crossing(lam, epoch["var_theta"].values[i] / wr["var_theta"].values[i])
        theory = crossing(lam, epoch["kuehn_rosenow_var_theta"].values[i] / wr["exact_var_theta"].values[i])
        rows.append({"batch_size": S, "lr": lr, "momentum": beta, "lambda_cross": predicted,
                     "lambda_half_measured": measured, "lambda_half_kuehn_rosenow": theory,
                     "measured_over_lambda_cross": measured / predicted})
    scaled = np.array([r["measured_over_lambda_cross"] for r in rows])
    result.numbers = {
        "definition": "lambda_1/2: where the 5-direction running median of Var theta(epoch) / Var theta(with "
                      "replacement) first reaches 1/2, log-interpolated; lambda_cross = 3 (1 - beta) S / (lr P)",
        "settings": rows,
        "lambda_half_over_lambda_cross_mean": float(np.nanmean(scaled)),
        "lambda_half_over_lambda_cross_relative_spread": float(np.nanstd(scaled) / np.nanmean(scaled)),
    }
    return result


def _gross_steps(P: int, seed: int) -> tuple[int, int]:
    problem = LinearRegression.teacher_student(GROSS["N"], P, GROSS["label_noise"], seed=seed)
    relax = float(relaxation_steps(problem.hessian_eigenvalues, GROSS["lr"], 0.0).max())
    return int(np.clip(30 * relax, 50_000, 400_000)), int(np.clip(10 * relax, 2_000, 150_000))


def gross_fig5(seed: int, progress: bool = True) -> SweepShowcase:
    """``sweep-gross-fig5`` (see the module docstring)."""
    Ps = [int(round(r * GROSS["N"])) for r in GROSS_RATIOS]
    steps = [_gross_steps(P, seed) for P in Ps]
    spec = SweepSpec.from_mapping({
        "experiment": "linear",
        "base": {**GROSS, "replicas": 8, "max_lag": 0, "seed": seed},
        "zip": {"P": Ps, "steps": [s for s, _ in steps], "burn_in": [b for _, b in steps]}})
    result = _run("sweep-gross-fig5", spec, seed, progress)
    ds = result.dataset
    norm = GROSS["lr"] * GROSS["label_noise"] / (2 * GROSS["batch_size"])
    traces = {"measured": ds["var_theta_trace"].values / norm,
              "measured_stderr": ds["var_theta_trace_stderr"].values / norm}
    for method in ("exact", "continuum", "detailed_balance"):
        traces[method] = ds[f"{method}_trace"].values / norm
    result.numbers = {"P_over_N": list(GROSS_RATIOS), "normalisation": "lr sigma_eps^2 / (2 S)",
                      "normalised_trace": traces,
                      "exact_trace_z": ds["exact_trace_z"].values}
    return result


def _geometric_mean(values: np.ndarray) -> float | None:
    values = values[np.isfinite(values) & (values > 0)]
    return float(np.exp(np.mean(np.log(values)))) if values.size else None


def net_equilibrated(ds: Any, epochs: int) -> np.ndarray:
    """Per setting, sampler and direction: the recorded window holds >= NET_WINDOW_TAUS measured tau_i."""
    window = epochs * ds["batches_per_epoch"]
    return (window >= NET_WINDOW_TAUS * ds["tau"]).values


def kuehn_rosenow_net(seed: int, progress: bool = True) -> SweepShowcase:
    """``sweep-kuehn-rosenow-net``: Kühn & Rosenow Figs. 20-21, smaller (see docs/sweeps.md, Showcases).

    LeNet-5 on the digits (``net``, :data:`NET_BASE`) at the seven (S, lr, beta) of
    :data:`NET_SETTINGS` (a zip axis); every cell measures both samplers from the same pre-trained
    point.  Per setting: lambda_cross = 3 (1 - beta) S / (lr P) (docs/theory.md §3d), and over the
    directions below and above it the geometric mean of Var theta(epoch) / Var theta(with
    replacement), measured and Kühn-Rosenow, and of measured / predicted Var theta per sampler
    (equilibrated directions only: a window of at least NET_WINDOW_TAUS measured tau_i).
    """
    spec = SweepSpec.from_mapping({
        "experiment": "net", "base": {**NET_BASE, "seed": seed},
        "zip": {"batch": [s[0] for s in NET_SETTINGS], "lr": [s[1] for s in NET_SETTINGS],
                "momentum": [s[2] for s in NET_SETTINGS]}})
    result = _run("sweep-kuehn-rosenow-net", spec, seed, progress)
    ds = result.dataset
    if "var_theta" not in ds:
        return result
    ok = net_equilibrated(ds, NET_BASE["epochs"])
    samplings = [str(s) for s in ds["sampling"].values]
    e, w = samplings.index("epoch"), samplings.index("with-replacement")
    rows = []
    for i, (S, lr, beta) in enumerate(NET_SETTINGS):
        lam, cross = ds["hessian_eigenvalues"].values[i], float(ds["lambda_cross"].values[i])
        measured, theory = ds["var_theta"].values[i], ds["kuehn_rosenow_var_theta"].values[i]
        row: dict[str, Any] = {"batch": S, "lr": lr, "momentum": beta, "lambda_cross": cross,
                               "tau_sgd": float(ds["tau_sgd"].values[i]),
                               "equilibrated_directions": {s: int(ok[i, j].sum()) for j, s in enumerate(samplings)}}
        for side, mask in (("below", lam < cross), ("above", lam >= cross)):
            both = mask & ok[i, e] & ok[i, w]
            row[side] = {"directions": int(mask.sum()), "equilibrated_in_both": int(both.sum()),
                         "measured_epoch_over_with_replacement": _geometric_mean(measured[e, both] / measured[w, both]),
                         "theory_epoch_over_with_replacement": _geometric_mean(theory[e, mask] / theory[w, mask])}
            row[side]["measured_over_theory"] = {
                s: _geometric_mean(measured[j, mask & ok[i, j]] / theory[j, mask & ok[i, j]])
                for j, s in enumerate(samplings)}
        rows.append(row)
    result.numbers = {"settings": rows, "equilibrated": f"recorded window >= {NET_WINDOW_TAUS} measured tau_i",
                      "ratios": "geometric means over the directions below / above lambda_cross"}
    return result
