r"""Theorem 4.2 of Ziyin, Li, Ueda (arXiv 2308.06671) for any depth, by quadrature.

The nonzero branch of the stationary density of ``v``, its infinite-depth
limit, ``Var v`` against ``T`` (fluctuation inversion) and the windowed
power-law exponent of the tail (docs/theory.md §6b).
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.integrate import cumulative_trapezoid, trapezoid

from sgdnoise._spec import check_int
from sgdnoise.errors import UsageError
from sgdnoise.problems.diagonal import DataMoments
from sgdnoise.stats.fits import truncated_power_law_mle
from sgdnoise.theory.balance import density as grid
from sgdnoise.theory.balance.density import StationaryDensity, v_scale
from sgdnoise.theory.balance.rates import check_temperature, critical_temperature, effective_temperature


def _integral_from(x: np.ndarray, y: np.ndarray, x_ref: float) -> np.ndarray:
    """``int_{x_ref}^{x_i} y dx`` on the ascending grid ``x`` (trapezoidal rule).

    Accumulated outward from ``x_ref`` in both directions, so that values near ``x_ref``
    carry no large offset (the integrands of Theorem 4.2 diverge at ``v = 0``).
    """
    k = int(np.searchsorted(x, x_ref))
    up = cumulative_trapezoid(y[k:], x[k:], initial=0.0)
    down = -cumulative_trapezoid(y[:k + 1][::-1], -x[:k + 1][::-1], initial=0.0)[::-1]
    return np.concatenate([down[:-1], up])


def _theorem42_log_density(moments: DataMoments, sign: float, power: float, drift_power: float,
                           drift_coef: float, decay_power: float, decay_coef: float
                           ) -> Callable[[np.ndarray], np.ndarray]:
    """``log p(v)`` of Theorem 4.2 on the branch ``v = sign * s``, ``s > 0``:

    ``-power log s - log g(v) - F(s)`` with ``F' = [drift_coef (beta_1 s - sign beta_2)
    s^-drift_power + decay_coef s^-decay_power] / g(v)``, integrated from the scale of ``v``.
    The returned function needs the whole (ascending) grid: ``F`` is a cumulative integral.
    """
    ref = v_scale(moments)

    def log_pdf(v: np.ndarray) -> np.ndarray:
        s = np.abs(v)
        integrand = (drift_coef * (moments.beta1 * s - sign * moments.beta2) * s**-drift_power
                     + decay_coef * s**-decay_power) / moments.noise(v)
        log_s = np.log(s)  # the grid is uniform in log s: ds = s d(log s)
        F = _integral_from(log_s, integrand * s, math.log(ref))
        return -power * log_s - np.log(moments.noise(v)) - F

    return log_pdf


def stationary_density(moments: DataMoments, depth: int, T: float, width: int = 1,
                       weight_decay: float = 0.0) -> StationaryDensity:
    r"""Nonzero branch of the stationary density of ``v`` for any depth, by quadrature.

    Ziyin, Li, Ueda, arXiv 2308.06671, Theorem 4.2 (with the weight-decay term added by
    the same zero-flux calculation, see the module docstring): for ``D >= 1``
    ``p*(v) = (1 - z) delta(v) + z p_+(v)`` with, for ``v`` of the sign of ``beta_2``,

    .. math::

        p_+(|v|) \propto |v|^{-3D/(D+1)} g(v)^{-1}
        \exp\Big(-\frac{1}{T}\int^{|v|}
          \frac{d^{(D-1)/(D+1)}(\beta_1 s - \beta_2) s^{-2D/(D+1)}
                 + \gamma\, d^{2(D-1)/(D+1)} s^{(1-3D)/(D+1)}}{(D+1)\, g(s)}\, ds\Big).

    It assumes every path balanced and carrying ``v/d`` (reached at stationarity for
    ``D > 1``; for ``D = 1`` the width drops out).  ``D = 0`` is the same formula on
    the whole line.  The weight ``z`` depends on the initial state and is not returned.

    Raises
    ------
    UsageError
        For ``T <= 0``, ``D < 0``, ``d < 1``, or when no nonzero branch is normalisable
        (``T >= T_c``; see :func:`critical_temperature`).
    """
    check_temperature(T)
    check_int("depth", depth, 0)
    check_int("width", width, 1)
    label = f"D={depth}, d={width}, T={T:g}"
    D = float(depth)
    drift_coef = 1.0 / effective_temperature(T, depth, width)
    decay_coef = weight_decay * width ** ((D - 1.0) / (D + 1.0)) * drift_coef
    if depth == 0:
        centre, sd = grid.depth0_centre_width(moments, T, weight_decay, width)

        def log_pdf(v: np.ndarray) -> np.ndarray:
            # F' = [(beta_1 v - beta_2)/(d T) + gamma v/(d^2 T)] / g(v), integrated from the centre
            integrand = (drift_coef * (moments.beta1 * v - moments.beta2)
                         + decay_coef * v) / moments.noise(v)
            return -np.log(moments.noise(v)) - _integral_from(v, integrand, centre)

        return grid.full_line(log_pdf, centre, sd, moments, label)
    grid.require_nonzero_branch(moments, depth, T, weight_decay)
    sign = grid.branch_sign(moments)
    log_pdf = _theorem42_log_density(moments, sign, 3.0 * D / (D + 1.0), 2.0 * D / (D + 1.0),
                                     drift_coef, (3.0 * D - 1.0) / (D + 1.0), decay_coef)
    return grid.half_line(log_pdf, moments, sign, label)


def infinite_depth_density(moments: DataMoments, tau: float) -> StationaryDensity:
    r"""Limit ``D -> inf`` of Theorem 4.2 at fixed ``tau = T D / d`` (``gamma = 0``).

    Ziyin, Li, Ueda, infinite-depth limit of Theorem 4.2: with ``T = tau d / D`` the
    exponents tend to ``3`` and ``2`` and the prefactor to ``1/tau``,

    .. math::

        p_\infty(|v|) \propto |v|^{-3} g(v)^{-1}
          \exp\Big(-\frac{1}{\tau}\int^{|v|}\frac{\beta_1 s - \beta_2}{s^2 g(s)} ds\Big),

    so the distribution depends on lr, S, D, d only through ``(d/D)(S/lr)``; its tail is
    ``|v|^-5``.
    """
    if not (math.isfinite(tau) and tau > 0):
        raise UsageError(f"tau = T D / d must be a finite number > 0; got {tau}", name="tau")
    sign = grid.branch_sign(moments)
    log_pdf = _theorem42_log_density(moments, sign, 3.0, 2.0, 1.0 / tau, 3.0, 0.0)
    return grid.half_line(log_pdf, moments, sign, f"D=inf, T D/d={tau:g}")


def stationary_variance(moments: DataMoments, depth: int, temperatures: np.ndarray,
                        width: int = 1, weight_decay: float = 0.0) -> np.ndarray:
    """``Var v`` of the nonzero branch against ``T`` (0 where it collapses, ``T >= T_c``).

    Fluctuation inversion (Ziyin, Li, Ueda): for ``D = 1``, ``Var v`` grows
    with ``T`` at small ``T`` and falls to 0 as ``T -> T_c``.
    """
    T_c = critical_temperature(moments, depth, weight_decay)
    return np.array([stationary_density(moments, depth, T, width, weight_decay).variance
                     if T < T_c else 0.0 for T in np.asarray(temperatures, dtype=np.float64)])


def windowed_power_law_exponent(density: StationaryDensity, low: float, high: float) -> float:
    """Exponent ``e`` of the power law on ``[low, high]`` with the density's ``E log|v|`` there.

    This is the maximum-likelihood fit of ``p ~ |v|^e`` restricted to the window applied
    to the density itself, i.e. what the same fit of samples converges to; it tends to
    :func:`tail_exponent` as the window moves out.
    """
    x = np.linspace(math.log(low), math.log(high), 4001)
    s = np.exp(x)
    weight = density.pdf_at(math.copysign(1.0, density.v[-1]) * s) * s
    target = float(trapezoid(x * weight, x) / trapezoid(weight, x))
    return truncated_power_law_mle(target, low, high)[0]
