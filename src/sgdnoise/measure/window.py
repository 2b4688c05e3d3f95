r"""Weight fluctuations of a recorded window with the linear drift removed, and their batch-means errors.

What :meth:`sgdnoise.measure.recorder.ProjectedFluctuations.detrended` returns (docs/net.md,
"Can the measurement be trusted?").  Per direction :math:`i` of the projections
:math:`p_{k,i} = v_i^\top(\theta_k - \theta_{\rm start})`, ``k = 0 .. T-1``:

- :math:`\mathrm{Var}\,\theta_i` is the mean square of the residuals about the least-squares
  line :math:`p_{k,i} \approx a_i + b_i k` of the whole window (linear drift removed;
  :mod:`sgdnoise.stats.trend`), so that a steady drift adds nothing and a stationary
  series loses only :math:`O(\tau_i/T)`;
- :math:`\mathrm{Var}\,v_i` of :math:`u_k = p_k - p_{k-1}` about its mean (the drift ``b`` is
  that mean, so nothing more to remove) and :math:`\tau_i = 2\mathrm{Var}\,\theta_i/\mathrm{Var}\,v_i`;
- the trend :math:`b_i` (per step) with its standard error (segment means against time);
- the relaxation time :math:`t_i`, the larger of the integrated autocorrelation time of
  :math:`p_{k,i}` measured by batch means over the coarsest blocks
  (:func:`sgdnoise.stats.trend.autocorrelation_time`) and a given one (the theory's);
- standard errors by batch means over blocks at least :math:`t_i` long: the window is
  recorded in fine segments, merged per direction into the shortest blocks (a power of two
  of segments) no shorter than :math:`t_i`, but never fewer than the coarsest level
  (``n_blocks`` blocks).  A direction whose :math:`t_i` exceeds that block length has
  a window shorter than ``n_blocks`` :math:`t_i`: its standard errors are too small and the
  experiment flags it as not equilibrated.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sgdnoise.stats.streaming import Estimate, SegmentMoments, ratio_estimate, segment_mean
from sgdnoise.stats.trend import TrendMoments, autocorrelation_time, merge_consecutive


@dataclass(frozen=True)
class WindowFluctuations:
    """Per direction (arrays of shape ``(k,)``): the module docstring's quantities.

    ``var_theta_raw`` is the variance about the window mean without drift removal (same blocks),
    for comparison; ``autocorrelation_time`` the measured integrated autocorrelation time of the
    projection (steps); ``relaxation_time`` the larger of it and the given one; ``block_length``
    the steps per batch-means block behind each standard error, ``n_blocks`` their number.
    """

    var_theta: Estimate
    var_v: Estimate
    tau: Estimate
    trend: Estimate
    var_theta_raw: Estimate
    autocorrelation_time: np.ndarray
    relaxation_time: np.ndarray
    block_length: np.ndarray
    n_blocks: np.ndarray
    steps: int


def _coarsened_velocity(velocity: SegmentMoments, factor: int) -> SegmentMoments:
    out = SegmentMoments.__new__(SegmentMoments)
    out.sum, out.sum_sq = merge_consecutive(velocity.sum, factor), merge_consecutive(velocity.sum_sq, factor)
    out.count = merge_consecutive(velocity.count, factor)
    return out


def _level(theta: TrendMoments, velocity: SegmentMoments, factor: int) -> dict[str, Estimate]:
    th, ve = theta.coarsened(factor), _coarsened_velocity(velocity, factor)
    detrended, velocity_blocks = th.detrended_segment_variances(), ve.segment_variances()
    return {"var_theta": segment_mean(detrended), "var_v": segment_mean(velocity_blocks),
            "tau": ratio_estimate(detrended, velocity_blocks, scale=2.0), "trend": th.trend(),
            "var_theta_raw": segment_mean(th.segment_variances()),
            "n_blocks": np.full(detrended.shape[1:], float(detrended.shape[0]))}


def window_fluctuations(theta: TrendMoments, velocity: SegmentMoments, segment_length: int,
                        coarsest: int, relaxation: np.ndarray | None = None) -> WindowFluctuations:
    """The module docstring's estimates from fine segments of ``segment_length`` steps.

    ``coarsest``: the largest merge factor (``n_blocks`` blocks); factors tried are the powers
    of two below it and ``coarsest`` itself.  ``relaxation``: a lower bound of the relaxation
    time per direction (steps), e.g. the theory's.
    """
    factors = sorted({2**j for j in range(int(np.log2(coarsest)) + 1) if 2**j < coarsest} | {coarsest})
    levels = [_level(theta, velocity, f) for f in factors]
    measured = autocorrelation_time(theta.coarsened(coarsest))
    relax = measured if relaxation is None else np.fmax(measured, relaxation)
    lengths = np.array([f * segment_length for f in factors], float)
    with np.errstate(invalid="ignore"):
        enough = lengths[:, None] >= np.nan_to_num(relax, nan=np.inf)[None, :]
    choice = np.where(enough.any(axis=0), enough.argmax(axis=0), len(factors) - 1)
    cols = np.arange(relax.size)

    def pick(name: str) -> Estimate:
        value = np.stack([lv[name].value for lv in levels])[choice, cols]
        stderr = np.stack([lv[name].stderr for lv in levels])[choice, cols]
        return Estimate(value, stderr)

    n_blocks = np.stack([lv["n_blocks"] for lv in levels])[choice, cols]
    return WindowFluctuations(pick("var_theta"), pick("var_v"), pick("tau"), pick("trend"), pick("var_theta_raw"),
                              measured, relax, lengths[choice], n_blocks, int(theta.count.sum()))
