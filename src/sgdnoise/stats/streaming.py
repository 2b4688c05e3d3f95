"""Streaming statistics: moments, covariances and lag autocovariances without stored trajectories.

Standard errors come from independent segments: each replica is one segment,
and when there are few replicas each replica's measurement window is further
cut into consecutive time blocks (batch means).  Blocks of one replica are
nearly independent when a block is much longer than the correlation time; the
simulator chooses at least 10 segments.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Estimate:
    """A measured quantity with its standard error (same shapes)."""

    value: np.ndarray
    stderr: np.ndarray


def segment_mean(values: np.ndarray) -> Estimate:
    """Mean over axis 0 (independent segments) and its standard error std/sqrt(n)."""
    n = values.shape[0]
    value = values.mean(axis=0)
    stderr = values.std(axis=0, ddof=1) / np.sqrt(n) if n > 1 else np.full_like(value, np.nan)
    return Estimate(value, stderr)


def ratio_estimate(num: np.ndarray, den: np.ndarray, scale: float = 1.0) -> Estimate:
    """scale * mean(num)/mean(den) over segments (axis 0), stderr by linearisation (delta method)."""
    mn, md = num.mean(axis=0), den.mean(axis=0)
    ratio = scale * mn / md
    influence = ratio * (num / mn - den / md)
    n = num.shape[0]
    stderr = influence.std(axis=0, ddof=1) / np.sqrt(n) if n > 1 else np.full_like(ratio, np.nan)
    return Estimate(ratio, stderr)


class SegmentMoments:
    """Running sums of x and x^2 per segment, for a variable of any shape.

    Parameters
    ----------
    n_segments : int
    shape : tuple of int
        Shape of one sample of the variable, per segment.
    """

    def __init__(self, n_segments: int, shape: tuple[int, ...]) -> None:
        self.sum = np.zeros((n_segments, *shape))
        self.sum_sq = np.zeros((n_segments, *shape))
        self.count = np.zeros(n_segments)

    def add(self, segments: slice | np.ndarray, total: np.ndarray, total_sq: np.ndarray, n: int) -> None:
        """Add sums over ``n`` samples for the segments selected by ``segments``."""
        self.sum[segments] += total
        self.sum_sq[segments] += total_sq
        self.count[segments] += n

    @property
    def filled(self) -> np.ndarray:
        """Mask of segments that received samples."""
        return self.count > 0

    def _per_segment(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        mask = self.filled
        shape = (-1,) + (1,) * (self.sum.ndim - 1)
        n = self.count[mask].reshape(shape)
        return self.sum[mask] / n, self.sum_sq[mask] / n, n

    def mean(self) -> Estimate:
        """Mean of x with its standard error."""
        first, _, _ = self._per_segment()
        return segment_mean(first)

    def segment_variances(self) -> np.ndarray:
        """Per-segment variance of x about the grand mean (segments, *shape)."""
        first, second, n = self._per_segment()
        grand = (first * n).sum(axis=0) / n.sum()
        return second - 2.0 * grand * first + grand**2

    def variance(self) -> Estimate:
        """Stationary variance of x (about the grand mean) with its standard error."""
        return segment_mean(self.segment_variances())


class CovarianceAccumulator:
    """Full covariance of a d-vector from chunks of samples, one GEMM per chunk."""

    def __init__(self, dim: int) -> None:
        self.sum = np.zeros(dim)
        self.outer = np.zeros((dim, dim))
        self.count = 0

    def add(self, samples: np.ndarray) -> None:
        """Add samples of shape (n, d)."""
        self.sum += samples.sum(axis=0)
        self.outer += samples.T @ samples
        self.count += samples.shape[0]

    def covariance(self) -> np.ndarray:
        mean = self.sum / self.count
        return self.outer / self.count - np.outer(mean, mean)


class LagAutocovariance:
    """cov(x_t, x_{t+h}) for h = 0..max_lag per replica, from consecutive chunks.

    ``add`` takes chunks of shape (steps, R, *shape) in time order; the last
    ``max_lag`` samples of each chunk are kept to pair with the next chunk, so
    the result equals the sums over one long stored trajectory.  With
    ``zero_mean`` the mean is known to vanish and is not subtracted.
    """

    def __init__(self, max_lag: int, replicas: int, shape: tuple[int, ...],
                 zero_mean: bool = False) -> None:
        self.max_lag = max_lag
        self.zero_mean = zero_mean
        self.products = np.zeros((replicas, max_lag + 1, *shape))
        self.pairs = np.zeros(max_lag + 1)
        self.sum = np.zeros((replicas, *shape))
        self.count = 0
        self._tail = np.zeros((0, replicas, *shape))

    def add(self, chunk: np.ndarray) -> None:
        joined = np.concatenate([self._tail, chunk], axis=0)
        start = self._tail.shape[0]
        steps = joined.shape[0]
        for h in range(self.max_lag + 1):
            lo = max(start, h)
            if lo >= steps:
                continue
            self.products[:, h] += np.einsum("tr...,tr...->r...", joined[lo:], joined[lo - h: steps - h])
            self.pairs[h] += steps - lo
        self.sum += chunk.sum(axis=0)
        self.count += chunk.shape[0]
        self._tail = joined[max(0, steps - self.max_lag):]

    def per_replica(self) -> np.ndarray:
        """Autocovariance of each replica, shape (R, max_lag + 1, *shape)."""
        grand = 0.0 if self.zero_mean else self.sum.sum(axis=0) / (self.count * self.sum.shape[0])
        lag_shape = (1, -1) + (1,) * (self.products.ndim - 2)
        return self.products / self.pairs.reshape(lag_shape) - grand**2

    def autocovariance(self) -> Estimate:
        """Autocovariance (max_lag + 1, *shape), mean over replicas, stderr across replicas."""
        return segment_mean(self.per_replica())
