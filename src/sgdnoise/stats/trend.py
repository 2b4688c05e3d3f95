r"""Fluctuations about a linear drift, streamed: per-segment sums of x, x², t, t², t x.

A recorded window of a training run that has not quite settled drifts: its variance about
the window mean grows like the square of the window length, :math:`(bT)^2/12` for a drift of
``b`` per step over ``T`` steps, and measures the window as much as the noise.
:class:`TrendMoments` keeps, per consecutive segment of the window, the sums

.. math:: n_s,\ \sum t,\ \sum t^2,\ \sum x,\ \sum x^2,\ \sum t x

(``x`` of any shape, ``t`` the step), from which follow exactly, without the stored series:

- the least-squares line :math:`x \approx a + b t` over the whole window
  (:meth:`TrendMoments.line`);
- per segment, the mean square of the residuals about that line
  (:meth:`TrendMoments.detrended_segment_variances`): fluctuations with the linear drift
  removed, whose mean over segments no longer depends on the window length when the
  drift is linear (tests/net/test_window.py);
- the trend :math:`b` with a batch-means standard error (:meth:`TrendMoments.trend`):
  the weighted least-squares slope of the segment means against the segment mean times,
  its standard error from their scatter about the line (``n - 2`` degrees of freedom),
  valid when a segment is longer than the correlation time of ``x``.

Consecutive segments merge exactly (:meth:`TrendMoments.coarsened`), so a fine recording can be
cut into blocks longer than each component's correlation time afterwards (docs/theory.md §8).
"""
from __future__ import annotations

import numpy as np

from sgdnoise.stats.streaming import Estimate, segment_mean

_FIELDS = ("count", "time", "time_sq", "sum", "sum_sq", "cross")


def merge_consecutive(values: np.ndarray, factor: int) -> np.ndarray:
    """Sums of ``factor`` consecutive entries along axis 0 (a shorter last group is kept)."""
    n = values.shape[0]
    groups = -(-n // factor)
    padded = np.concatenate([values, np.zeros((groups * factor - n, *values.shape[1:]))])
    return padded.reshape(groups, factor, *values.shape[1:]).sum(axis=1)


class TrendMoments:
    """Per-segment sums of a series ``x_t`` and of its products with the step ``t`` (module docstring).

    Parameters
    ----------
    n_segments : int
    shape : tuple of int
        Shape of one sample.
    """

    def __init__(self, n_segments: int, shape: tuple[int, ...]) -> None:
        self.count = np.zeros(n_segments)
        self.time = np.zeros(n_segments)
        self.time_sq = np.zeros(n_segments)
        self.sum = np.zeros((n_segments, *shape))
        self.sum_sq = np.zeros((n_segments, *shape))
        self.cross = np.zeros((n_segments, *shape))

    def add(self, segment: int, t: float, x: np.ndarray) -> None:
        """Add the sample ``x`` taken at step ``t`` to ``segment``."""
        self.count[segment] += 1
        self.time[segment] += t
        self.time_sq[segment] += t * t
        self.sum[segment] += x
        self.sum_sq[segment] += x * x
        self.cross[segment] += t * x

    def coarsened(self, factor: int) -> TrendMoments:
        """The same sums over segments of ``factor`` consecutive segments (exact)."""
        out = TrendMoments.__new__(TrendMoments)
        for name in _FIELDS:
            setattr(out, name, merge_consecutive(getattr(self, name), factor))
        return out

    def _filled(self) -> tuple[np.ndarray, ...]:
        mask = self.count > 0
        return tuple(getattr(self, name)[mask] for name in _FIELDS)

    def line(self) -> tuple[np.ndarray, np.ndarray]:
        r"""Intercept ``a`` and slope ``b`` of the least-squares line :math:`x \approx a + b t` over all samples."""
        n, st, stt, sx, _, stx = (v.sum(axis=0) for v in self._filled())
        t_mean, x_mean = st / n, sx / n
        slope = (stx / n - t_mean * x_mean) / (stt / n - t_mean**2)
        return x_mean - slope * t_mean, slope

    def detrended_segment_variances(self) -> np.ndarray:
        r"""Per filled segment, the mean of :math:`(x - a - b t)^2` about the window's line, ``(segments, *shape)``."""
        a, b = self.line()
        n, st, stt, sx, sxx, stx = self._filled()
        shape = (-1,) + (1,) * (sx.ndim - 1)
        n, st, stt = n.reshape(shape), st.reshape(shape), stt.reshape(shape)
        square = sxx - 2 * a * sx - 2 * b * stx + a * a * n + 2 * a * b * st + b * b * stt
        return np.maximum(square / n, 0.0)

    def segment_variances(self) -> np.ndarray:
        """Per filled segment, the mean square about the window's mean (no drift removed)."""
        n, _, _, sx, sxx, _ = self._filled()
        shape = (-1,) + (1,) * (sx.ndim - 1)
        n = n.reshape(shape)
        grand = sx.sum(axis=0) / n.sum()
        return sxx / n - 2 * grand * sx / n + grand**2

    def trend(self) -> Estimate:
        """Slope of the segment means against the segment mean times (weights: counts) and its standard error."""
        n, st, _, sx, _, _ = self._filled()
        shape = (-1,) + (1,) * (sx.ndim - 1)
        w = n.reshape(shape)
        t, x = (st / n).reshape(shape), sx / w
        t_bar, x_bar = (w * t).sum(0) / w.sum(), (w * x).sum(0) / w.sum()
        sxx_t = (w * (t - t_bar) ** 2).sum(0)
        slope = (w * (t - t_bar) * (x - x_bar)).sum(0) / sxx_t
        dof = len(n) - 2
        if dof < 1:
            return Estimate(slope, np.full_like(slope, np.nan))
        residual = x - x_bar - slope * (t - t_bar)
        scale = (w * residual**2).sum(0) / dof  # variance of a unit-weight segment mean
        return Estimate(slope, np.sqrt(scale / sxx_t))


def autocorrelation_time(moments: TrendMoments) -> np.ndarray:
    r"""Integrated autocorrelation time :math:`\tau_{\rm int} = \frac12 + \sum_{h\ge1}\rho_h` (steps) by batch means.

    The segment means :math:`\bar x_s` about the window's line scatter with variance
    :math:`2\tau_{\rm int}\mathrm{Var}\,x / L` for segments of :math:`L \gg \tau_{\rm int}` steps, so
    :math:`\tau_{\rm int} = \frac{\sum_s n_s(\bar x_s - a - b\bar t_s)^2}{2(n - 2)\,\mathrm{Var}\,x}`
    (``n`` segments; residuals of the segment means, weighted by their lengths).  With segments
    shorter than the correlation time it saturates near the segment length (an underestimate).
    """
    a, b = moments.line()
    n, st, _, sx, _, _ = moments._filled()
    shape = (-1,) + (1,) * (sx.ndim - 1)
    w = n.reshape(shape)
    residual = sx / w - a - b * (st / n).reshape(shape)
    variance = detrended_variance(moments).value
    with np.errstate(invalid="ignore", divide="ignore"):
        return (w * residual**2).sum(axis=0) / (2 * max(len(n) - 2, 1) * variance)


def detrended_variance(moments: TrendMoments) -> Estimate:
    """Mean over segments of the detrended segment variances and its standard error (batch means)."""
    return segment_mean(moments.detrended_segment_variances())
