"""Gradient noise measured by running a sampler at fixed weights.

At fixed weights the batch gradient is ``g_k = (1/S) sum_{n in B_k} grad l_n``
and its noise ``dg_k = g_k - grad L``.  Drawing the batches with the very
sampler used for training measures the noise autocorrelation
``cov(dg_k, dg_{k+h})`` by lag, to hold against Kuehn & Rosenow eq. 2
(docs/theory.md §2): with replacement it is a delta at h = 0; in epochs it is
negative for 1 <= h <= M and sums to zero.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sgdnoise.interrupts import stop_requested
from sgdnoise.sampling import Sampler
from sgdnoise.stats.streaming import Estimate, LagAutocovariance, segment_mean
from sgdnoise.progress import progress_bar


@dataclass(frozen=True)
class NoiseAutocorrelation:
    """Measured cov(dg_k, dg_{k+h}) for h = 0..max_lag.

    Attributes
    ----------
    per_direction : Estimate
        Shape (max_lag + 1, d): along each coordinate of the gradients given.
    trace : Estimate
        Shape (max_lag + 1,): the sum over coordinates, tr cov(dg_k, dg_{k+h}).
    """

    per_direction: Estimate
    trace: Estimate


def noise_autocorrelation(per_example_gradients: np.ndarray, sampler: Sampler, steps: int,
                          max_lag: int, progress: bool = False) -> NoiseAutocorrelation:
    """cov(dg_k, dg_{k+h}) along each coordinate, h = 0..max_lag, averaged over k.

    Parameters
    ----------
    per_example_gradients : ndarray (P, d)
        grad l_n at the fixed weights (project them first to measure along chosen directions).
    sampler : Sampler
        Draws the batches; its replicas are independent runs, which give the standard errors.
    steps : int
        Steps per replica.  For ``epoch`` sampling take a multiple of the epoch length M, so
        that every position in the epoch is weighted alike (up to O(h/steps)).
    max_lag : int

    Returns
    -------
    NoiseAutocorrelation
        Means over replicas with standard errors across replicas.
    """
    G = np.asarray(per_example_gradients, dtype=np.float64)
    centred = G - G.mean(axis=0)
    d, R = G.shape[1], sampler.replicas
    acov = LagAutocovariance(max_lag, R, (d,), zero_mean=True)
    chunk = max(max_lag + 1, 4_000_000 // (R * (d + sampler.batch_size)))
    with progress_bar(progress, total=steps, desc="noise autocorrelation") as bar:
        for start in range(0, steps, chunk):
            n = min(chunk, steps - start)
            acov.add(centred[sampler.draw(n)].mean(axis=2))
            bar.update(n)
            if stop_requested():  # after at least one chunk, so that every lag has pairs
                break
    per_replica = acov.per_replica()
    return NoiseAutocorrelation(segment_mean(per_replica), segment_mean(per_replica.sum(axis=2)))
