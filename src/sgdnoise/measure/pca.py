"""Trajectory PCA of SGD weights, per replica, with drift-mode detection (docs/theory.md §5, §8).

Feng & Tu's measurement: snapshots ``w(t_1), ..., w(t_n)`` of one run over a window
late in training, centred on the window mean ``<w>``; the principal directions
``p_i`` and variances ``sigma_i^2`` are those of the centred snapshot matrix,
``w(t) = <w> + sum_i theta_i(t) p_i``, ``sigma_i^2 = sum_t theta_i(t)^2 / (n - 1)``.

**Replicas.** PCA is done per replica (directions differ between replicas: they are not
averaged); the variances are then aggregated by rank order (the i-th largest of every
replica), mean and standard error over replicas (:func:`aggregate`).

**Finite-window bias.** The window variance is measured about the window mean, so
a direction with integrated autocorrelation time ``tau`` (in snapshots) loses about
``2 tau / n`` of its variance (and a direction slower than the window is mistaken for a
drift); and n correlated snapshots give ``n / (2 tau)`` effective samples, so the
sample eigenvalues spread around the true ones (the largest biased up, the smallest
down) by a relative amount of order ``sqrt(d 2 tau / n)`` (Marchenko-Pastur).  Neither is
corrected here; for the linear networks :mod:`sgdnoise.theory.pca_window` measures both by
applying this estimator to synthetic windows of the linearised dynamics (docs/theory.md §5b),
reported as ``theory.<layer>.window``.

**Drift modes.** A direction dominated by a slow mean displacement (e.g. diffusion
along a symmetry valley, docs/theory.md §6a) is flagged when the means of its
projection over the two halves of the window differ by more than ``shift_limit``
standard deviations, ``|m_2 - m_1| / sigma > 1``, or when its integrated
autocorrelation time exceeds ``tau_fraction`` of the window.  For Brownian motion
the first component has ``|m_2 - m_1| / sigma = 4 sqrt(2) / pi ~ 1.8``; for a stationary
mode with ``tau << n`` it is of order ``sqrt(tau / n)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sgdnoise.errors import UsageError

#: Exact (batched LAPACK) SVD up to this many weights; a randomised range finder beyond.
EXACT_MAX_DIM = 4000


@dataclass
class TrajectoryPCA:
    """PCA of R replicas' windows.

    Attributes
    ----------
    variances : ndarray (R, m)
        sigma_i^2 per replica, descending.
    directions : ndarray (R, m, d)
        Unit principal directions p_i.
    mean : ndarray (R, d)
        Window means <w>.
    shift : ndarray (R, m)
        |m_2 - m_1| / sigma of each projection (halves of the window).
    tau : ndarray (R, m)
        Integrated autocorrelation time of each projection, in snapshots.
    drift : ndarray (R, m) bool
        Flagged as drift.
    """

    variances: np.ndarray
    directions: np.ndarray
    mean: np.ndarray
    shift: np.ndarray
    tau: np.ndarray
    drift: np.ndarray


def _randomized_svd(A: np.ndarray, k: int, rng: np.random.Generator, power: int = 4) -> tuple[np.ndarray, ...]:
    """Top-k SVD of A (n, d) by a randomised range finder with ``power`` subspace iterations."""
    Q = np.linalg.qr(A @ rng.normal(size=(A.shape[1], min(k + 10, min(A.shape)))))[0]
    for _ in range(power):
        Q = np.linalg.qr(A @ (A.T @ Q))[0]
    U, s, Vt = np.linalg.svd(Q.T @ A, full_matrices=False)
    return s[:k], Vt[:k]


def integrated_time(series: np.ndarray) -> np.ndarray:
    """``tau = 1 + 2 sum_{h>=1} rho(h)``, summed until rho first drops below zero; series (..., n)."""
    n = series.shape[-1]
    x = series - series.mean(axis=-1, keepdims=True)
    f = np.fft.rfft(x, 2 * n, axis=-1)
    acov = np.fft.irfft(f * np.conj(f), axis=-1)[..., :n]
    rho = acov / np.where(acov[..., :1] > 0, acov[..., :1], 1.0)
    positive = np.cumprod(rho[..., 1:] > 0, axis=-1)
    return 1.0 + 2.0 * np.sum(rho[..., 1:] * positive, axis=-1)


def trajectory_pca(snapshots: np.ndarray, components: int | None = None, shift_limit: float = 1.0,
                   tau_fraction: float = 0.1, seed: int = 0) -> TrajectoryPCA:
    """PCA of every replica's window ``snapshots`` (R, n, d); see the module docstring.

    ``components`` (default ``min(d, n - 1)``) directions are kept.  Exact batched SVD up to
    :data:`EXACT_MAX_DIM` weights, a randomised range finder beyond.
    """
    snapshots = np.asarray(snapshots, dtype=np.float64)
    if snapshots.ndim != 3 or snapshots.shape[1] < 4:
        raise UsageError(f"snapshots must have shape (R, n, d) with n >= 4 snapshots; got {snapshots.shape}",
                         name="snapshot_every")
    R, n, d = snapshots.shape
    m = min(d, n - 1) if components is None else min(components, d, n - 1)
    mean = snapshots.mean(axis=1)
    centred = snapshots - mean[:, None, :]
    if d <= EXACT_MAX_DIM:
        _, s, Vt = np.linalg.svd(centred, full_matrices=False)
        s, Vt = s[:, :m], Vt[:, :m]
    else:
        rng = np.random.default_rng(seed)
        pairs = [_randomized_svd(c, m, rng) for c in centred]
        s, Vt = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    variances = s**2 / (n - 1)
    theta = np.einsum("rnd,rmd->rmn", centred, Vt)
    half = n // 2
    sigma = np.sqrt(np.maximum(variances, 1e-300))
    shift = np.abs(theta[..., half:].mean(-1) - theta[..., :half].mean(-1)) / sigma
    tau = integrated_time(theta)
    drift = (shift > shift_limit) | (tau > tau_fraction * n)
    return TrajectoryPCA(variances, Vt, mean, shift, tau, drift)


def aggregate(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error over replicas (axis 0) of values ranked per replica, (R, m) -> (m,), (m,)."""
    R = values.shape[0]
    se = values.std(axis=0, ddof=1) / np.sqrt(R) if R > 1 else np.full(values.shape[1], np.nan)
    return values.mean(axis=0), se


def drift_ranks(pca: TrajectoryPCA) -> list[int]:
    """Ranks (0-based) flagged as drift in more than half of the replicas."""
    return [int(i) for i in np.flatnonzero(pca.drift.mean(axis=0) > 0.5)]


def projected_variances(snapshots: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Window variances of the projections of ``snapshots`` (R, n, d) on the columns of ``basis`` (d, m)."""
    theta = snapshots @ basis
    return theta.var(axis=1, ddof=1)
