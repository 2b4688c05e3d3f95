"""Measured against predicted: the final ``v`` against the density, imbalance decay against the law of balance."""
from __future__ import annotations

import numpy as np
from scipy.integrate import cumulative_trapezoid
from scipy.interpolate import RegularGridInterpolator

from sgdnoise.dynamics.balance_sgd import BalanceRun
from sgdnoise.experiments.balance.results import PairRates, SampleComparison
from sgdnoise.problems.diagonal import DataMoments, Dataset, DiagonalNetwork, TeacherStream
from sgdnoise.stats.distributions import histogram, ks_distance, mean_and_variance
from sgdnoise.stats.fits import replica_slopes
from sgdnoise.stats.streaming import segment_mean
from sgdnoise.theory import balance as theory

#: ``|v|`` below this times the scale of ``v`` counts as collapsed onto ``v = 0``.
COLLAPSED = 1e-6


def compare_samples(run: BalanceRun, density: theory.StationaryDensity | None,
                    scale: float) -> SampleComparison:
    """Histogram, moments, collapsed fraction and KS distance of the final ``v`` of a run.

    Only replicas that did not diverge count; the KS distance treats their final ``v``
    as independent samples of ``density``.  With fewer than 2 such replicas there is nothing
    to compare: ``n`` says how many, the statistics are NaN and the histogram empty.
    """
    alive = ~run.diverged
    v = run.v[-1][alive]
    v = v[np.isfinite(v)]
    if v.size < 2:
        nan, empty = float("nan"), np.zeros(0)
        return SampleComparison(
            n=int(v.size), histogram={"edges": empty, "counts": empty, "density": empty}, mean=nan, mean_se=nan,
            variance=nan, variance_se=nan, collapsed_fraction=nan, distance=None,
            variance_over_time=np.full(run.times.size, nan), diverged=int(run.diverged.sum()))
    return SampleComparison(
        n=int(v.size), histogram=histogram(v), **mean_and_variance(v),
        collapsed_fraction=float(np.mean(np.abs(v) < COLLAPSED * scale)),
        distance=ks_distance(v, density.cdf_at) if density is not None else None,
        variance_over_time=np.var(run.v[:, alive], axis=1), diverged=int(run.diverged.sum()))


def stationary_rate(moments: DataMoments, T: float, net: DiagonalNetwork,
                    density: theory.StationaryDensity | None) -> float | None:
    """``E_p[4 T g(v) P] + 4 gamma`` with ``P = |v/d|^(2(D-1)/(D+1))`` on the balanced manifold."""
    if density is None:
        return None
    others = 2.0 * (net.depth - 1.0) / (net.depth + 1.0)
    return density.expect(lambda v: theory.balance_rate(
        moments, v, T, net.weight_decay, np.abs(v / net.width) ** others))


def sgd_finite_step_remainder(data: TeacherStream | Dataset, lr: float, batch: int, moments: DataMoments,
                              T: float, net: DiagonalNetwork, v: np.ndarray, others: np.ndarray
                              ) -> np.ndarray | None:
    """``h(v, P) - [4 T g(v) P + 4 gamma + lr m(v)^2 P]``: what the exact one-step decay of SGD adds to
    the law of balance with its first-order term (docs/theory.md §6d), at the recorded ``v`` and
    ``P = others``.

    Only for the Gaussian teacher; None otherwise.  ``h`` is tabulated on 200 points over the
    range of ``v`` times 16 over the range of ``log P`` and interpolated (it is smooth in both).
    """
    if not isinstance(data, TeacherStream) or v.size == 0:
        return None
    grid = np.linspace(v.min(), v.max(), 200) if v.max() > v.min() else np.array([v.min(), v.min() + 1.0])
    lo, hi = float(np.log(others.min())), float(np.log(others.max()))
    log_p = np.linspace(lo, hi, 16) if hi - lo > 1e-12 else np.array([lo])
    table = np.empty((log_p.size, grid.size))
    for i, lp in enumerate(log_p):
        P = float(np.exp(lp))
        exact = theory.sgd_balance_decay(grid, lr, batch, data.slope, data.noise_std, data.x_std,
                                         net.weight_decay, P)
        table[i] = exact - theory.balance_rate(moments, grid, T, net.weight_decay, P) \
            - lr * P * moments.mean_gradient(grid) ** 2
    if log_p.size == 1:
        return np.interp(v, grid, table[0])
    interpolate = RegularGridInterpolator((log_p, grid), table)
    return interpolate(np.stack([np.clip(np.log(others), lo, hi), v], axis=-1))


def balance_rates(run: BalanceRun, moments: DataMoments, T: float, net: DiagonalNetwork,
                  stationary: float | None, sgd: tuple[TeacherStream | Dataset, float, int] | None = None
                  ) -> list[PairRates]:
    """Measured and predicted decay rates of ``log|u_k^2 - u_{k+1}^2|``, per pair of layers.

    Each replica's rate is the least-squares slope over the record times; the mean over
    replicas and its standard error are reported, next to the prediction of the law of
    balance (docs/theory.md §6a) integrated along the same paths (continuous, and with the
    first-order finite-step term) and ``stationary``, its average over the density.
    ``predicted_finite_step`` (docs/theory.md §6d): for SGD (``sgd = (data, lr, batch)``) the
    exact expected one-step decay, its remainder over the first order integrated along the
    paths by the trapezoidal rule over the records (teacher data; else None); for
    the SDE (``sgd`` None) the Euler-Maruyama step to second order.
    """
    ok = ~run.diverged
    rates = []
    for k in range(net.depth):
        remainder = None if sgd is None or run.others is None else sgd_finite_step_remainder(
            sgd[0], sgd[1], sgd[2], moments, T, net, run.v[:, ok], run.others[:, ok, k])
        measured = -replica_slopes(run.times, np.log(np.abs(run.imbalance[:, ok, k])))
        est = segment_mean(measured)
        row: dict[str, float | None] = {"predicted_finite_step": None, "predicted_finite_step_difference_se": None}
        paths = {key: theory.predicted_log_imbalance(moments, T, net.weight_decay, run.integrals[:, ok, k, :],
                                                     run.times[:, None], discrete)
                 for key, discrete in (("predicted", False), ("predicted_discrete", True))}
        if sgd is None:
            paths["predicted_finite_step"] = theory.predicted_log_imbalance(
                moments, T, net.weight_decay, run.integrals[:, ok, k, :], run.times[:, None], gaussian_steps=True)
        elif remainder is not None:
            paths["predicted_finite_step"] = paths["predicted_discrete"] - cumulative_trapezoid(
                remainder, run.times, axis=0, initial=0.0)
        for key, path in paths.items():
            predicted = -replica_slopes(run.times, path)
            row[key] = float(predicted.mean())
            row[key + "_difference_se"] = float(segment_mean(measured - predicted).stderr)
        if net.width > 1 and run.summed_imbalance is not None:
            summed = segment_mean(-replica_slopes(run.times, np.log(np.abs(run.summed_imbalance[:, ok, k]))))
            row.update(summed_measured=float(summed.value), summed_measured_se=float(summed.stderr))
        rates.append(PairRates(pair=k, measured=float(est.value), measured_se=float(est.stderr),
                               predicted_stationary=stationary, **row))
    return rates
