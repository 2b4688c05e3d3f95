"""Measured against predicted: the final ``v`` against the density, imbalance decay against the law of balance."""
from __future__ import annotations

import numpy as np

from sgdnoise.dynamics.balance_sgd import BalanceRun
from sgdnoise.experiments.balance.results import PairRates, SampleComparison
from sgdnoise.problems.diagonal import DataMoments, DiagonalNetwork
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


def balance_rates(run: BalanceRun, moments: DataMoments, T: float, net: DiagonalNetwork,
                  stationary: float | None) -> list[PairRates]:
    """Measured and predicted decay rates of ``log|u_k^2 - u_{k+1}^2|``, per pair of layers.

    Each replica's rate is the least-squares slope over the record times; the mean over
    replicas and its standard error are reported, next to the prediction of the law of
    balance (docs/theory.md §6a) integrated along the same paths (continuous, and with the
    first-order finite-step term) and ``stationary``, its average over the density.
    """
    ok = ~run.diverged
    rates = []
    for k in range(net.depth):
        measured = -replica_slopes(run.times, np.log(np.abs(run.imbalance[:, ok, k])))
        est = segment_mean(measured)
        row: dict[str, float] = {}
        for key, discrete in (("predicted", False), ("predicted_discrete", True)):
            path = theory.predicted_log_imbalance(moments, T, net.weight_decay,
                                                  run.integrals[:, ok, k, :],
                                                  run.times[:, None], discrete)
            predicted = -replica_slopes(run.times, path)
            row[key] = float(predicted.mean())
            row[key + "_difference_se"] = float(segment_mean(measured - predicted).stderr)
        rates.append(PairRates(pair=k, measured=float(est.value), measured_se=float(est.stderr),
                               predicted_stationary=stationary, **row))
    return rates
