"""Distributions of independent samples: histograms, moments with standard errors, KS tests.

Used where many independent replicas give one sample each (the stationary
distributions of :mod:`sgdnoise.experiments.balance`), so that plain sample
statistics carry valid standard errors.  NumPy and SciPy only.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import stats

from sgdnoise.stats.streaming import segment_mean

#: Two-sided significance level of every comparison of a measurement with a prediction.
ALPHA = 1e-3
#: The matching number of standard errors, ``z_(1 - ALPHA/2)`` = 3.29.
Z_CRIT = float(stats.norm.isf(ALPHA / 2))


def histogram(samples: np.ndarray, bins: int = 60) -> dict[str, np.ndarray]:
    """Normalised histogram over the 0.1 %..99.9 % quantile range.

    Returns ``edges`` (bins + 1), ``counts`` and ``density = counts / (n x width)``,
    which integrates to the fraction of samples inside the range.
    """
    lo, hi = np.quantile(samples, [0.001, 0.999])
    counts, edges = np.histogram(samples, bins=bins, range=(lo, hi))
    width = np.diff(edges)
    return {"edges": edges, "counts": counts, "density": counts / (samples.size * width)}


def mean_and_variance(samples: np.ndarray) -> dict[str, float]:
    """Sample mean and variance with standard errors from independent samples."""
    n = samples.size
    centred = samples - samples.mean()
    return {"mean": float(samples.mean()), "mean_se": float(samples.std(ddof=1) / math.sqrt(n)),
            "variance": float(centred.var(ddof=1)),
            "variance_se": float((centred**2).std(ddof=1) / math.sqrt(n))}


def time_average_variance(values: np.ndarray) -> dict[str, float]:
    """Stationary variance from records ``values`` (n_times, R) of independent replicas.

    Each replica ``r`` gives time averages ``m1_r, m2_r`` of ``x, x^2``;
    ``Var = <m2> - <m1>^2``, and its standard error is that of ``m2_r - 2 <m1> m1_r``
    over replicas (delta method).  Records of one replica may be correlated.
    """
    m1, m2 = values.mean(axis=0), (values**2).mean(axis=0)
    mean = m1.mean()
    z = m2 - 2.0 * mean * m1
    return {"variance": float(m2.mean() - mean**2), "variance_se": float(segment_mean(z).stderr)}


def ks_distance(samples: np.ndarray, cdf: Callable[[np.ndarray], np.ndarray],
                alpha: float = ALPHA) -> dict[str, Any]:
    """Kolmogorov-Smirnov distance of ``n`` independent samples to the distribution ``cdf``.

    ``D_n = sup_v |F_n(v) - F(v)|``.  Under the null it follows ``kstwo(n)``: its mean
    and standard deviation (``null_mean``, ``null_sd``) are the sampling error, and
    ``critical`` is its ``1 - alpha`` quantile.
    """
    n = samples.size
    result = stats.kstest(samples, cdf)
    null = stats.kstwo(n)
    return {"statistic": "Kolmogorov-Smirnov", "value": float(result.statistic),
            "p_value": float(result.pvalue), "n": int(n), "alpha": alpha,
            "critical": float(null.ppf(1 - alpha)), "null_mean": float(null.mean()),
            "null_sd": float(null.std())}
