r"""``ziyin-ergodicity``: width ``d > 1`` and the broken ergodicity between sign sectors.

Ziyin, Li, Ueda (arXiv 2308.06671; docs/theory.md §6e): a balanced path of depth ``D >= 1``
never changes the sign of its output under the SDE (all its layers would have to pass 0
together, where the dynamics stop), so the sign pattern of the paths is conserved. Replicas
of a width-``d`` network start balanced with random path signs; ``k`` counts the paths of the
sign of ``beta_2`` (the sector).  For ``D >= 2`` the theory predicts, per sector:

- the fraction of replicas in sector ``k`` stays the initial one (``Binomial(d, 1/2)``): no
  replica crosses (the weight ``z`` of Theorem 4.2 is set by the initial state);
- ``k >= 1``: the paths of the wrong sign die out and the ``k`` others balance, so ``v``
  follows Theorem 4.2 with width ``k`` (effective temperature ``T (D+1)/k^((D-1)/(D+1))``);
- ``k = 0``: ``v -> 0`` (the density of the wrong branch is not normalisable at 0);
  ``Y_j = ((D+1)/(D-1)) |v_j|^(-(D-1)/(D+1))`` of each path grows with drift
  ``s_j (D+1) m(v) + 2 T D (D+1) g(v) |v_j|^((D-1)/(D+1))`` (Ito's formula on a balanced path
  of sign ``s_j``), tending to ``2 (D+1) |beta_2|``.

Random numbers: ``ergodicity/signs``, ``ergodicity/sde``, ``ergodicity/sgd``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.integrate import trapezoid
from scipy.stats import binom

from sgdnoise._spec import rng, stream_seed
from sgdnoise.dynamics.balance_sgd import BalanceRun, simulate_sde, simulate_sgd
from sgdnoise.experiments.balance.reproductions import FIGURE_DATA
from sgdnoise.problems.diagonal import DataMoments, DiagonalNetwork, TeacherStream
from sgdnoise.stats.distributions import histogram, ks_distance
from sgdnoise.stats.streaming import segment_mean
from sgdnoise.theory import balance as theory

#: The case of the figure: D = 2, d = 2 (sectors k = 0, 1, 2), T = lr = 0.2, 1000 time units.
CASE = {"depth": 2, "width": 2, "T": 0.2, "time": 1000.0, "records": 41}


@dataclass(frozen=True)
class ErgodicityResult:
    """Per simulator (``sde``, ``sgd``): crossings and, per sector ``k``, what was measured.

    ``sectors[name][k]``: ``n``, ``fraction`` (with ``fraction_se``), ``predicted_fraction``;
    for ``k >= 1`` the final ``v`` (``histogram``, ``mean``, ``mean_se``, ``distance``: KS to
    Theorem 4.2 with width ``k``; ``distance_other_width``: to width ``d``, or 1 for ``k = d``); for ``k = 0`` the
    collapse (``collapse``: growth of ``Y`` over the second half, measured and predicted).
    """

    seed: int
    moments: DataMoments
    replicas: int
    densities: dict[int, theory.StationaryDensity]
    crossings: dict[str, int]
    sectors: dict[str, dict[int, dict[str, Any]]]
    collapse_curves: dict[str, dict[str, np.ndarray]]
    status: str = "completed"

    def to_summary(self) -> dict[str, Any]:
        return {"reproduction": "ziyin-ergodicity", "seed": self.seed, "data": FIGURE_DATA, **CASE,
                "replicas": self.replicas, "moments": self.moments.as_dict(),
                "predicted_mean": {k: d.mean for k, d in self.densities.items()},
                "crossings": self.crossings, "sectors": self.sectors, "status": self.status}


def _y(run: BalanceRun, exponent: float, D: int) -> np.ndarray:
    """``Y_j = ((D+1)/(D-1)) |v_j|^(-exponent)`` of every path (n, R, d)."""
    return (D + 1.0) / (D - 1.0) * np.abs(run.path_outputs) ** -exponent


def _collapse(run: BalanceRun, sel: np.ndarray, moments: DataMoments, T: float, D: int,
              signs: np.ndarray) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Growth of ``Y`` in sector 0 over the second half of the run, measured and path-integrated."""
    e = (D - 1.0) / (D + 1.0)
    Y = _y(run, e, D)[:, sel].mean(axis=2)
    r = np.abs(run.path_outputs[:, sel])
    v = run.v[:, sel]
    drift = (signs[None, sel] * (D + 1.0) * moments.mean_gradient(v)[..., None]
             + 2.0 * T * D * (D + 1.0) * moments.noise(v)[..., None] * r ** e).mean(axis=2)
    half = run.times.size // 2
    span = run.times[-1] - run.times[half]
    measured = segment_mean((Y[-1] - Y[half]) / span)
    predicted = trapezoid(drift[half:], run.times[half:], axis=0) / span
    block = {"measured_rate": measured.value, "measured_rate_se": measured.stderr,
             "predicted_rate": float(predicted.mean()),
             "difference_se": segment_mean((Y[-1] - Y[half]) / span - predicted).stderr,
             "asymptotic_rate": 2.0 * (D + 1.0) * abs(moments.beta2), "window": [run.times[half], run.times[-1]],
             "final_max_abs_v": float(np.max(np.abs(v[-1])))}
    return block, {"times": run.times, "Y": Y.mean(axis=1), "Y_se": Y.std(axis=1) / np.sqrt(Y.shape[1])}


def _sectors(run: BalanceRun, signs: np.ndarray, moments: DataMoments, T: float, net: DiagonalNetwork,
             densities: dict[int, theory.StationaryDensity]) -> tuple[dict[int, dict[str, Any]], dict]:
    """Fraction, final ``v`` against Theorem 4.2 of width ``k``, and the collapse of sector 0."""
    d, D, right = net.width, net.depth, np.sign(moments.beta2) or 1.0
    k = np.sum(signs == right, axis=1)
    out: dict[int, dict[str, Any]] = {}
    curves = {}
    R = k.size
    for sector in range(d + 1):
        sel = k == sector
        n = int(sel.sum())
        p = n / R
        row: dict[str, Any] = {"n": n, "fraction": p, "fraction_se": float(np.sqrt(p * (1 - p) / R)),
                               "predicted_fraction": float(binom.pmf(sector, d, 0.5))}
        if sector == 0:
            if n > 1 and run.times.size >= 3:  # the collapse needs a second half of records
                row["collapse"], curves = _collapse(run, sel, moments, T, D, signs)
        elif n > 1:
            v = run.v[-1, sel]
            est = segment_mean(v)
            row.update(histogram=histogram(v), mean=est.value, mean_se=est.stderr,
                       distance=ks_distance(v, densities[sector].cdf_at),
                       distance_other_width=ks_distance(v, densities[d if sector != d else 1].cdf_at)["value"],
                       wrong_sign_max_abs=float(np.max(np.abs(run.path_outputs[-1, sel] * (signs[sel] != right)))))
        out[sector] = row
    return out, curves


def ergodicity(seed: int, progress: bool = False, replicas: int = 10_000) -> ErgodicityResult:
    """Replicas of a ``D = 2``, ``d = 2`` network with random path signs: SDE and SGD (``lr = T``)."""
    data = TeacherStream(**FIGURE_DATA)
    moments = data.moments
    D, d, T = CASE["depth"], CASE["width"], CASE["T"]
    net = DiagonalNetwork(D, d)
    signs = rng(seed, "ergodicity", "signs").choice([-1.0, 1.0], size=(replicas, d))
    theta = net.balanced(np.full(replicas, abs(moments.beta2) / moments.beta1))
    theta[:, :, 0] = np.abs(theta[:, :, 0]) * signs
    times = np.linspace(0.0, CASE["time"], CASE["records"])
    steps = round(CASE["time"] / T)
    runs = {"sde": simulate_sde(net, moments, T, theta, times, 0.003, seed=stream_seed(seed, "ergodicity", "sde"),
                                progress=progress),
            "sgd": simulate_sgd(net, data, T, 1, theta, steps, steps // (CASE["records"] - 1),
                                stream_seed(seed, "ergodicity", "sgd"), progress)}
    densities = {k: theory.stationary_density(moments, D, T, k) for k in range(1, d + 1)}
    sectors, curves, crossings = {}, {}, {}
    for name, run in runs.items():
        crossings[name] = int(np.sum(np.any(np.sign(run.path_outputs) != signs[None], axis=(0, 2))))
        sectors[name], curves[name] = _sectors(run, signs, moments, T, net, densities)
    stopped = [f"{name} at t = {run.interrupted_at:.4g}" for name, run in runs.items() if run.interrupted_at is not None]
    status = f"interrupted: {', '.join(stopped)} of {CASE['time']:g}" if stopped else "completed"
    return ErgodicityResult(seed=seed, moments=moments, replicas=replicas, densities=densities,
                            crossings=crossings, sectors=sectors, collapse_curves=curves, status=status)
