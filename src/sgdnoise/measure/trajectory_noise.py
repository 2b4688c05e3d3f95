r"""Gradient noise along the SGD trajectory, split into the part at w* and the weight-dependent part.

On a quadratic problem every per-example gradient is affine in the weights,
``grad l_n(w) = A_n (w - w*) + g_n`` with ``g_n = grad l_n(w*)`` (``sum_n g_n = 0``) and
``H = mean_n A_n``.  The noise of the batch ``B_k`` of step k, evaluated at the weights the
step starts from (``theta_{k-1} = w_{k-1} - w*``), splits exactly (docs/theory.md §3i):

.. math::

    \xi_k = g_{B_k}(w_{k-1}) - g(w_{k-1}) = a_k + b_k,\qquad
    a_k = \frac{1}{S}\sum_{n \in B_k} g_n,\qquad
    b_k = (H_{B_k} - H)\,\theta_{k-1},

``a_k`` the noise at the reference point w* (what Kuehn & Rosenow's kernel describes) and
``b_k`` the weight-dependent part (``H_B = (1/S) sum_{n in B} A_n``; zero when every
``A_n = H``, e.g. additive per-example noise).  The lag covariances (second moments, summed
over coordinates for the trace) ``C_xy(h) = <x_k . y_{k-h}>`` then add up exactly:

.. math::

    C_{\xi\xi}(h) = C_{aa}(h) + C_{bb}(h) + X(h),\qquad X(h) = C_{ab}(h) + C_{ba}(h).

All four are measured by one :class:`~sgdnoise.stats.streaming.LagAutocovariance` over the
channels ``a, b, a + b, a - b``: ``C_{a+b}`` is the total and ``X = (C_{a+b} - C_{a-b}) / 2``
(polarisation), so the split is checked, not imposed.  The *effective strength* of a part,
relative to white noise of the total's variance, is its two-sided lag sum up to ``max_lag``,

.. math::

    s_x = \frac{C_x(0) + 2 \sum_{h=1}^{L} C_x(h)}{C_{\xi\xi}(0)},\qquad
    s_{\xi} = s_{aa} + s_{bb} + s_X,

1 for white noise, 0 for noise that cancels over the window (the epoch kernel at w*, whose
sum is exactly zero); ``s_x / (C_x(0) / C_{\xi\xi}(0))`` is the same relative to the part's own
variance.  The lag sum stops at ``L``: correlations longer than ``L`` steps (the weight-dependent
part decays with the relaxation of theta) are not in it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sgdnoise.stats.streaming import Estimate, LagAutocovariance, segment_mean

#: The parts of the split, in the order of every array.
PARTS = ("reference", "weight", "cross", "total")


@dataclass(frozen=True)
class TrajectoryNoise:
    """Measured lag covariances of the noise along the trajectory, per part of the split.

    Attributes
    ----------
    per_replica : ndarray (R, max_lag + 1, 4, d)
        ``C_x(h)`` per replica, lag, part (:data:`PARTS`) and coordinate.
    steps : int
        Steps per replica that entered the measurement.
    """

    per_replica: np.ndarray
    steps: int = 0

    @property
    def max_lag(self) -> int:
        return self.per_replica.shape[1] - 1

    def trace(self, part: str) -> Estimate:
        """``tr C_x(h)``, h = 0..max_lag (mean over replicas, standard error across them)."""
        return segment_mean(self.per_replica[:, :, PARTS.index(part)].sum(axis=-1))

    def per_direction(self, part: str) -> Estimate:
        """``C_x(h)`` along each coordinate, shape (max_lag + 1, d)."""
        return segment_mean(self.per_replica[:, :, PARTS.index(part)])

    def normalised(self, part: str) -> Estimate:
        """``tr C_x(h) / tr C_total(0)`` per lag (the parts add up to the total's curve)."""
        traces = self.per_replica.sum(axis=-1)
        return segment_mean(traces[:, :, PARTS.index(part)] / traces[:, :1, PARTS.index("total")])

    def strengths(self, directions: np.ndarray | None = None) -> dict[str, dict[str, Estimate]]:
        """Per part: ``variance`` (``C_x(0) / C_total(0)``), ``strength`` s_x, ``correlated`` (the lag sum
        beyond h = 0, ``s_x - C_x(0)/C_total(0)``) and, for the reference and weight parts, ``own``
        (``s_x`` over the part's own variance).  ``directions`` (bool or index array over the
        coordinates): sum over these coordinates only (default all)."""
        values = self.per_replica if directions is None else self.per_replica[..., directions]
        traces = values.sum(axis=-1)  # (R, L + 1, 4)
        total0 = traces[:, 0, PARTS.index("total")]
        out: dict[str, dict[str, Estimate]] = {}
        for i, part in enumerate(PARTS):
            lag_sum = traces[:, 0, i] + 2 * traces[:, 1:, i].sum(axis=1)
            entry = {"variance": segment_mean(traces[:, 0, i] / total0),
                     "strength": segment_mean(lag_sum / total0),
                     "correlated": segment_mean((lag_sum - traces[:, 0, i]) / total0)}
            if part in ("reference", "weight") and np.all(traces[:, 0, i] > 0):
                entry["own"] = segment_mean(lag_sum / traces[:, 0, i])
            out[part] = entry
        return out


class TrajectoryNoiseSplit:
    """Streaming accumulator of the split lag covariances (module docstring).

    Parameters
    ----------
    reference_gradients : ndarray (P, d)
        ``g_n = grad l_n(w*)`` in the coordinates of the trajectory (e.g. the Hessian eigenbasis).
    features : ndarray (P, d) or None
        ``z_n`` with ``A_n = z_n z_n^T`` (linear regression, one output, in the same coordinates),
        or None when every ``A_n = H`` (no weight-dependent noise).
    hessian : ndarray (d,)
        ``H`` as its diagonal (the coordinates must be its eigenbasis when ``features`` is given).
    max_lag : int
    replicas : int
    """

    def __init__(self, reference_gradients: np.ndarray, features: np.ndarray | None, hessian: np.ndarray,
                 max_lag: int, replicas: int) -> None:
        self.g = np.asarray(reference_gradients, np.float64)
        self.z = None if features is None else np.asarray(features, np.float64)
        self.lam = np.asarray(hessian, np.float64)
        self.acov = LagAutocovariance(max_lag, replicas, (4, self.g.shape[1]), zero_mean=True)

    def parts(self, batches: np.ndarray, theta_before: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(a_k, b_k)`` for batches (n, R, S) and the weights each step starts from (n, R, d)."""
        a = self.g[batches].mean(axis=2)
        if self.z is None:
            return a, np.zeros_like(a)
        zb = self.z[batches]  # (n, R, S, d)
        along = np.einsum("trsd,trd->trs", zb, theta_before)
        b = np.einsum("trsd,trs->trd", zb, along) / batches.shape[2] - self.lam * theta_before
        return a, b

    def add(self, batches: np.ndarray, theta_before: np.ndarray) -> None:
        """Add n consecutive steps (time order; chunks must follow each other without gaps)."""
        a, b = self.parts(batches, theta_before)
        self.acov.add(np.stack([a, b, a + b, a - b], axis=2))

    def result(self) -> TrajectoryNoise:
        """The four parts per replica: reference, weight, cross (polarisation), total."""
        c = self.acov.per_replica()  # (R, L + 1, 4, d): a, b, a + b, a - b
        cross = (c[:, :, 2] - c[:, :, 3]) / 2
        return TrajectoryNoise(np.stack([c[:, :, 0], c[:, :, 1], cross, c[:, :, 2]], axis=2), self.acov.count)
