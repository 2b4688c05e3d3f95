"""Distributions of independent samples: histograms, moments with standard errors, slopes.

Used where many independent replicas give one sample each (the stationary
distributions of :mod:`sgdnoise.experiments.balance`), so that plain sample
statistics carry valid standard errors.
"""
from __future__ import annotations

import math

import numpy as np


def histogram(samples: np.ndarray, bins: int = 60) -> dict[str, list[float]]:
    """Normalised histogram over the 0.1 %..99.9 % quantile range (``density`` integrates to
    the fraction of samples inside it)."""
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


def replica_slopes(times: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Least-squares slope of ``values`` (n_times, R) against ``times``, one per replica."""
    tc = times - times.mean()
    return tc @ (values - values.mean(axis=0)) / (tc @ tc)
