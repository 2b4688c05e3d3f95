"""``ziyin-inversion``: fluctuation inversion (``Var v`` against ``T``) and the critical temperature, ``D = 1``.

Random numbers come from named streams of the seed: ``inversion/variance/<i>/sgd``
(and ``sde``) for the temperature ``i`` of the variance runs,
``inversion/growth/<i>/sgd`` (and ``sde``) for the growth runs, ``inversion/data``
for the draws of the batch gradient at ``v = 0``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sgdnoise._spec import rng, stream_seed
from sgdnoise.dynamics.balance_sgd import simulate_sde, simulate_sgd
from sgdnoise.experiments.balance.problem import minimiser
from sgdnoise.experiments.balance.reproductions import FIGURE_DATA
from sgdnoise.interrupts import announce_phase, stop_requested
from sgdnoise.problems.diagonal import DataMoments, DiagonalNetwork, TeacherStream
from sgdnoise.stats.distributions import time_average_variance
from sgdnoise.stats.fits import line_zero, log_growth_rate
from sgdnoise.theory import balance as theory

Rows = dict[str, list[dict[str, float]]]


@dataclass(frozen=True)
class InversionResult:
    """Theory and measurements of the inversion figure (keys of :meth:`to_summary`).

    ``variance_grid``/``variance_curves``: ``Var v`` of the theory for ``D = 0, 1, 2``;
    ``variance``: SGD and SDE time averages; ``growth``: measured and predicted growth
    rates of ``log v`` near 0; ``fits``: their zeros (``T_c``); ``lr_grid`` with the SDE
    and finite-lr SGD growth rates, whose zero is ``sgd_T_c``.
    """

    seed: int
    moments: DataMoments
    T_c: float
    replicas: int
    variance_grid: np.ndarray
    variance_curves: dict[str, np.ndarray]
    variance: Rows
    growth: Rows
    fits: dict[str, dict[str, float]]
    lr_grid: np.ndarray
    sde_growth_curve: np.ndarray
    sgd_growth_curve: np.ndarray
    sgd_T_c: float | None
    sgd_finite_lr: dict[str, Any] | None = None
    status: str = "completed"

    def to_summary(self) -> dict[str, Any]:
        return {"reproduction": "ziyin-inversion", "seed": self.seed, "data": FIGURE_DATA,
                "moments": self.moments.as_dict(), "T_c": self.T_c, "replicas": self.replicas,
                "variance_theory": {"T": self.variance_grid, **self.variance_curves},
                "variance_measured": self.variance, "growth_rate": self.growth,
                "T_c_measured": self.fits, "T_c_sgd_finite_lr": self.sgd_T_c,
                "sgd_variance_finite_lr": self.sgd_finite_lr, "status": self.status}


def sgd_variance_check(moments: DataMoments, rows: list[dict[str, float]], G0: np.ndarray) -> dict[str, Any]:
    """SGD's ``Var v`` against the SDE theory at ``T`` and at the growth-matched ``T_eff``.

    ``T_eff = (4 beta_2 - r_SGD(T)) / (4 alpha_3)`` is the temperature at which the SDE's growth
    rate of ``log v`` at 0 equals SGD's exact finite-lr one at ``lr = T``
    (:func:`sgdnoise.theory.balance.sgd_growth_rate_at_origin`): a heuristic that moves ``T_c`` to
    SGD's own (docs/theory.md §6d).  ``z`` values are (measured - predicted)/s.e.; ``unexplained``
    lists the temperatures where neither prediction is within 3.29 s.e., with the numbers, and
    ``explained_by_T_eff`` those off the theory at ``T`` but not at ``T_eff``.
    """
    points = []
    for r in rows:
        T = r["T"]
        T_eff = (4.0 * moments.beta2 - theory.sgd_growth_rate_at_origin(G0, T)) / (4.0 * moments.alpha3)
        at_T, at_eff = theory.stationary_variance(moments, 1, np.array([T, T_eff]))
        points.append({"T": T, "T_eff": float(T_eff), "measured": r["variance"], "se": r["variance_se"],
                       "theory_at_T": float(at_T), "z_at_T": (r["variance"] - at_T) / r["variance_se"],
                       "theory_at_T_eff": float(at_eff), "z_at_T_eff": (r["variance"] - at_eff) / r["variance_se"]})
    bad = [p for p in points if abs(p["z_at_T"]) > 3.29 and abs(p["z_at_T_eff"]) > 3.29]
    text = "; ".join(f"T = {p['T']:.3g}: SGD Var v {p['measured']:.4f} ± {p['se']:.4f} is "
                     f"{100 * (p['measured'] / p['theory_at_T'] - 1):+.1f} % from the SDE theory (z = {p['z_at_T']:+.1f}) "
                     f"and {100 * (p['measured'] / p['theory_at_T_eff'] - 1):+.1f} % from it at T_eff = {p['T_eff']:.3g} "
                     f"(z = {p['z_at_T_eff']:+.1f})" for p in bad)
    fixed = [p for p in points if abs(p["z_at_T"]) > 3.29 >= abs(p["z_at_T_eff"])]
    note = "; ".join(f"T = {p['T']:.3g}: {100 * (p['measured'] / p['theory_at_T'] - 1):+.1f} % (z = {p['z_at_T']:+.1f}) "
                     f"from the theory at T, z = {p['z_at_T_eff']:+.1f} at T_eff = {p['T_eff']:.3g}" for p in fixed)
    return {"points": points, "unexplained": text or None, "explained_by_T_eff": note or None}


def _variance_points(data: TeacherStream, net: DiagonalNetwork, T_c: float, replicas: int,
                     seed: int) -> Rows:
    """Stationary ``Var v`` of SGD (``lr = T``) and the SDE at ``0.1 .. 0.8 T_c``.

    Runs of 5000 time units, the first 1500 discarded (mixing time ~500 at ``0.8 T_c``).
    A stop request ends the loop; the temperature whose runs it cut short is left out.
    """
    announce_phase("variance")
    moments = data.moments
    duration, burn_in, records = 5000.0, 1500.0, 100
    theta0 = net.balanced(np.full(replicas, minimiser(moments, net)))
    points: Rows = {"sgd": [], "sde": []}
    for i, T in enumerate(np.array([0.1, 0.3, 0.5, 0.65, 0.8]) * T_c):
        steps = round(duration / T)
        sgd = simulate_sgd(net, data, T, 1, theta0, steps, steps // records,
                           stream_seed(seed, "inversion", "variance", i, "sgd"))
        if stop_requested():
            break
        sde = simulate_sde(net, moments, T, theta0, sgd.times, 0.003,
                           seed=stream_seed(seed, "inversion", "variance", i, "sde"))
        if sde.interrupted_at is not None:
            break
        first = int(np.searchsorted(sgd.times, burn_in))
        for name, r in (("sgd", sgd), ("sde", sde)):
            points[name].append({"T": float(T), **time_average_variance(r.v[first:, ~r.diverged])})
    return points


def _growth_points(data: TeacherStream, net: DiagonalNetwork, T_c: float, replicas: int, seed: int,
                   G0: np.ndarray) -> Rows:
    """Growth rate of ``log v`` from ``v = 1e-20`` over 400 time units at ``0.85 .. 1.15 T_c``.

    The SDE against ``4 beta_2 - 4 T alpha_3``, SGD (``lr = T``) against its finite-lr rate
    from the draws ``G0`` of the batch gradient at ``v = 0`` (docs/theory.md §6c).
    A stop request ends the loop; the temperature whose runs it cut short is left out.
    """
    announce_phase("growth")
    moments = data.moments
    theta = net.balanced(np.full(replicas, 1e-20))
    growth: Rows = {"sgd": [], "sde": []}
    for i, T in enumerate(np.array([0.85, 0.95, 1.05, 1.15]) * T_c):
        steps = round(400.0 / T)
        sgd = simulate_sgd(net, data, T, 1, theta, steps, steps, stream_seed(seed, "inversion", "growth", i, "sgd"))
        if stop_requested():
            break
        sde = simulate_sde(net, moments, T, theta, [0.0, 400.0], 0.001,
                           seed=stream_seed(seed, "inversion", "growth", i, "sde"))
        if sde.interrupted_at is not None:
            break
        ok = ~sgd.diverged
        growth["sgd"].append({"T": float(T), **log_growth_rate(sgd.v[:, ok], sgd.times),
                              "predicted": theory.sgd_growth_rate_at_origin(G0, T)})
        growth["sde"].append({"T": float(T), **log_growth_rate(sde.v, sde.times),
                              "predicted": theory.growth_rate_at_origin(moments, T)})
    return growth


def _zero_crossing(x: np.ndarray, y: np.ndarray) -> float | None:
    """``x`` where ``y`` first changes sign (linear interpolation), or None."""
    sign = np.flatnonzero(np.diff(np.sign(y)))
    if not sign.size:
        return None
    k = sign[0]
    return float(np.interp(0.0, y[k:k + 2][::-1], x[k:k + 2][::-1]))


def inversion(seed: int, progress: bool = False, replicas: int = 2000) -> InversionResult:
    """Fluctuation inversion (``Var v`` against ``T``) and the critical temperature, ``D = 1``.

    ``Var v`` from time averages of SGD and SDE runs next to the theory for ``D = 0, 1, 2``;
    ``T_c`` from the zero of a weighted line through the growth rates of ``log v`` started at
    ``v = 1e-20`` (docs/theory.md §6b, §6c).
    """
    data = TeacherStream(**FIGURE_DATA)
    moments = data.moments
    net = DiagonalNetwork(1)
    T_c = theory.critical_temperature(moments, 1)
    grid = np.linspace(0.01, 1.2, 120) * T_c
    x, y = data.draw(rng(seed, "inversion", "data"), (2_000_000,))
    G0 = -2.0 * x * y
    growth = _growth_points(data, net, T_c, replicas, seed, G0)
    fits = {}
    for name, rows in growth.items():
        zero, se = line_zero(*(np.array([r[key] for r in rows]) for key in ("T", "rate", "rate_se"))) \
            if len(rows) >= 2 else (None, None)
        fits[name] = {"T_c": zero, "T_c_se": se}
    lr_grid = np.linspace(0.8, 1.2, 41) * T_c
    sgd_curve = np.array([theory.sgd_growth_rate_at_origin(G0, T) for T in lr_grid])
    variance = _variance_points(data, net, T_c, replicas, seed) if not stop_requested() else {"sgd": [], "sde": []}
    done = (len(growth["sde"]), len(variance["sde"]))
    status = "completed" if done == (4, 5) else (
        f"interrupted: {done[0]} of 4 growth-rate temperatures and {done[1]} of 5 variance temperatures "
        "measured (a temperature whose runs the stop cut short is left out)")
    return InversionResult(
        seed=seed, moments=moments, T_c=T_c, replicas=replicas, variance_grid=grid,
        variance_curves={f"D{D}": theory.stationary_variance(moments, D, grid) for D in (0, 1, 2)},
        variance=variance, growth=growth, fits=fits,
        lr_grid=lr_grid, sde_growth_curve=np.array([theory.growth_rate_at_origin(moments, T) for T in lr_grid]),
        sgd_growth_curve=sgd_curve, sgd_T_c=_zero_crossing(lr_grid, sgd_curve),
        sgd_finite_lr=sgd_variance_check(moments, variance["sgd"], G0), status=status)
