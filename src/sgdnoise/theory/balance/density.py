"""The tabulated stationary density of ``v`` and the grids it is tabulated on.

A density is normalised on a fine grid, with the mass beyond the grid ends
given by the local power laws (docs/theory.md §6b).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.integrate import cumulative_trapezoid, trapezoid

from sgdnoise.errors import UsageError
from sgdnoise.problems.diagonal import DataMoments
from sgdnoise.theory.balance.rates import critical_temperature

#: Grid ends relative to the scale of v: far enough that the mass outside is
#: given to double precision by the power-law end corrections.
_LOW, _HIGH = 1e-15, 1e12
_MIN_POINTS, _MAX_POINTS = 20_001, 2_000_001
_POINTS_PER_WIDTH = 1600

@dataclass(frozen=True)
class StationaryDensity:
    """A normalised density of ``v`` tabulated on a fine grid.

    Attributes
    ----------
    v : ndarray
        Ascending grid (one sign for ``D >= 1``: the nonzero branch).
    pdf : ndarray
        Density on ``v`` (integrates to 1 including the power-law end corrections).
    cdf : ndarray
        ``P(V <= v)`` on ``v``.
    label : str
        What it is (depth, width, T).
    """

    v: np.ndarray
    pdf: np.ndarray
    cdf: np.ndarray
    label: str

    def pdf_at(self, v: np.ndarray) -> np.ndarray:
        """The density at ``v`` (linear interpolation of ``log p``; 0 off the grid)."""
        with np.errstate(divide="ignore"):
            log_pdf = np.log(self.pdf)
        return np.exp(np.interp(v, self.v, log_pdf, left=-np.inf, right=-np.inf))

    def cdf_at(self, v: np.ndarray) -> np.ndarray:
        """``P(V <= v)`` (linear interpolation on the grid)."""
        return np.interp(v, self.v, self.cdf, left=0.0, right=1.0)

    def expect(self, f: Callable[[np.ndarray], np.ndarray]) -> float:
        """``E[f(V)]`` by the trapezoidal rule on the grid."""
        return float(trapezoid(f(self.v) * self.pdf, self.v))

    @property
    def mean(self) -> float:
        return self.expect(lambda v: v)

    @property
    def variance(self) -> float:
        mean = self.mean
        return self.expect(lambda v: (v - mean) ** 2)

    def quantile(self, q: np.ndarray | float) -> np.ndarray:
        """Inverse of the cdf (interpolated)."""
        return np.interp(q, self.cdf, self.v)


def _tabulate(log_pdf: Callable[[np.ndarray], np.ndarray], to_v: Callable[[np.ndarray], np.ndarray],
              dv_dt: Callable[[np.ndarray], np.ndarray], t_range: tuple[float, float],
              label: str) -> StationaryDensity:
    """Normalise ``exp(log_pdf(v))`` on a grid uniform in ``t`` (``v = to_v(t)``).

    The grid is refined until the bulk (``log p > max - 2``) spans at least
    ``_POINTS_PER_WIDTH`` points.  The mass beyond each end is added from the local
    power law ``p ~ |v|^e`` there (exact for the algebraic ends of these densities);
    an end with ``e >= -1`` means the density is not normalisable.
    """
    n = _MIN_POINTS
    while True:
        t = np.linspace(*t_range, n)
        v = to_v(t)
        log_p = log_pdf(v)
        log_p = log_p - np.max(log_p)
        bulk = t[log_p > -2.0]
        points = (bulk[-1] - bulk[0]) / (t[1] - t[0]) if bulk.size > 1 else 0
        if points >= _POINTS_PER_WIDTH or n >= _MAX_POINTS:
            break
        n = min(_MAX_POINTS, int(n * max(2.0, 1.5 * _POINTS_PER_WIDTH / max(points, 1.0))))
    p = np.exp(log_p)
    weight = p * dv_dt(t)
    inner = cumulative_trapezoid(weight, t, initial=0.0)
    ends = []
    for i, j in ((0, 1), (-1, -2)):
        if p[i] == 0.0:
            ends.append(0.0)
            continue
        slope = (log_p[j] - log_p[i]) / (np.log(abs(v[j])) - np.log(abs(v[i])))
        towards_zero = abs(v[i]) < abs(v[j])
        if (slope <= -1.0) if towards_zero else (slope >= -1.0):
            raise UsageError(f"{label}: the density is not normalisable (p ~ |v|^{slope:.3g} at "
                             f"v = {v[i]:.3g}); the stationary distribution is delta(v)")
        ends.append(p[i] * abs(v[i]) / abs(slope + 1.0))
    total = inner[-1] + ends[0] + ends[1]
    pdf = p / total
    cdf = (inner + ends[0]) / total
    if v[0] > v[-1]:
        v, pdf, cdf = v[::-1], pdf[::-1], 1.0 - cdf[::-1]
    return StationaryDensity(v=v, pdf=pdf, cdf=cdf, label=label)


def v_scale(moments: DataMoments) -> float:
    """Natural scale of ``v``: the larger of ``|beta_2|/beta_1`` and the noise crossover
    ``sqrt(alpha_3/alpha_1)`` beyond which ``g(v) ~ alpha_1 v^2``."""
    return max(abs(moments.beta2) / moments.beta1, math.sqrt(moments.alpha3 / moments.alpha1))


def half_line(log_pdf: Callable[[np.ndarray], np.ndarray], moments: DataMoments, sign: float,
              label: str) -> StationaryDensity:
    """Tabulate a branch ``v = sign * exp(t)`` with ``t`` uniform over 27 decades."""
    scale = v_scale(moments)
    t_range = (math.log(_LOW * scale), math.log(_HIGH * scale))
    return _tabulate(log_pdf, lambda t: sign * np.exp(t), np.exp, t_range, label)


def full_line(log_pdf: Callable[[np.ndarray], np.ndarray], centre: float, width: float,
              moments: DataMoments, label: str) -> StationaryDensity:
    """Tabulate on ``v = centre + width sinh(t)``: linear near the centre, logarithmic far out."""
    t_max = math.asinh(_HIGH * v_scale(moments) / width)
    return _tabulate(log_pdf, lambda t: centre + width * np.sinh(t),
                     lambda t: width * np.cosh(t), (-t_max, t_max), label)


def branch_sign(moments: DataMoments) -> float:
    """Sign of ``v`` on the nonzero branch: that of ``beta_2`` (``+1`` at ``beta_2 = 0``)."""
    return 1.0 if moments.beta2 >= 0 else -1.0


def depth0_centre_width(moments: DataMoments, T: float, weight_decay: float,
                        width: int) -> tuple[float, float]:
    """Mean and linear-noise standard deviation of the depth-0 process (grid placement only)."""
    b1 = moments.beta1 + weight_decay / width
    centre = moments.beta2 / b1
    return centre, math.sqrt(width * T * float(moments.noise(centre)) / b1)


def require_nonzero_branch(moments: DataMoments, depth: int, T: float,
                           weight_decay: float) -> None:
    """Raise :class:`UsageError` naming ``T`` when ``T >= T_c``: no nonzero branch is normalisable."""
    T_c = critical_temperature(moments, depth, weight_decay)
    if T >= T_c:
        raise UsageError(f"T = {T:g} >= T_c = {T_c:.6g} at depth {depth}: the stationary "
                         "distribution is delta(v) (all weights 0); no density to show", name="T")
