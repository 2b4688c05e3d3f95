r"""Closed-form stationary densities of ``v`` for depths 0 and 1 (docs/theory.md §6b).

The paper's depth-0 and depth-1 solutions, which precede Theorem 4.2 (Ziyin, Li,
Ueda, arXiv 2308.06671); the tests hold them against the general quadrature of
:mod:`sgdnoise.theory.balance.general`.
"""
from __future__ import annotations

import math

import numpy as np

from sgdnoise.errors import UsageError
from sgdnoise.problems.diagonal import DataMoments
from sgdnoise.theory.balance import density as grid
from sgdnoise.theory.balance.density import StationaryDensity
from sgdnoise.theory.balance.rates import check_temperature


def depth0_log_density(v: np.ndarray, moments: DataMoments, T: float,
                       weight_decay: float = 0.0, width: int = 1) -> np.ndarray:
    r"""Unnormalised log-density of ``v`` for ``D = 0`` (Ziyin, Li, Ueda; docs/theory.md §6).

    .. math::

        p(v) \propto g(v)^{-1 - \beta_1'/(2 T' \alpha_1)}
          \exp\Big[-\frac{1}{T'}
          \frac{\alpha_2\beta_1' - \alpha_1\beta_2}{\alpha_1\sqrt\Delta}
          \arctan\frac{\alpha_1 v - \alpha_2}{\sqrt\Delta}\Big],

    the zero-flux solution of ``dv = -2 d (beta_1' v - beta_2) dt + 2 d sqrt(T g) dW``
    with ``T' = d T`` and ``beta_1' = beta_1 + gamma/d`` (``d = 1``: the paper's form).
    """
    a1, a2, b2 = moments.alpha1, moments.alpha2, moments.beta2
    b1 = moments.beta1 + weight_decay / width
    Tp = width * T
    root = math.sqrt(moments.delta)
    v = np.asarray(v, dtype=np.float64)
    return (-(1.0 + b1 / (2.0 * Tp * a1)) * np.log(moments.noise(v))
            - (a2 * b1 - a1 * b2) / (Tp * a1 * root) * np.arctan((a1 * v - a2) / root))


def depth1_log_density(v: np.ndarray, moments: DataMoments, T: float,
                       weight_decay: float = 0.0) -> np.ndarray:
    r"""Unnormalised log-density of ``v = u w`` for ``D = 1``, ``v > 0`` (docs/theory.md §6).

    .. math::

        p(v) \propto \frac{v^{\beta_2'/(2\alpha_3 T) - 3/2}}
             {g(v)^{1 + \beta_2'/(4 T \alpha_3)}}
        \exp\Big[-\frac{1}{2T}
             \frac{\alpha_3\beta_1 - \alpha_2\beta_2'}{\alpha_3\sqrt\Delta}
             \arctan\frac{\alpha_1 v - \alpha_2}{\sqrt\Delta}\Big],
        \qquad \beta_2' = \beta_2 - \gamma,

    the zero-flux solution of ``dv = [-4 (beta_1 v - beta_2') v + 4 T g v] dt
    + 4 v sqrt(T g) dW`` on the balanced manifold ``u^2 = w^2 = v``.  The width does
    not enter.  For ``beta_2 < 0`` use the mirrored data (``beta_2, alpha_2 -> -``).
    """
    a1, a2, a3, b1 = moments.alpha1, moments.alpha2, moments.alpha3, moments.beta1
    b2 = moments.beta2 - weight_decay
    root = math.sqrt(moments.delta)
    v = np.asarray(v, dtype=np.float64)
    return ((b2 / (2.0 * a3 * T) - 1.5) * np.log(v)
            - (1.0 + b2 / (4.0 * T * a3)) * np.log(moments.noise(v))
            - (a3 * b1 - a2 * b2) / (2.0 * T * a3 * root) * np.arctan((a1 * v - a2) / root))


def closed_form_density(moments: DataMoments, depth: int, T: float, weight_decay: float = 0.0,
                        width: int = 1) -> StationaryDensity:
    """The normalised closed-form density for ``D = 0`` or ``D = 1`` (see the log-densities)."""
    check_temperature(T)
    label = f"D={depth}, d={width}, T={T:g} (closed form)"
    if depth == 0:
        centre, sd = grid.depth0_centre_width(moments, T, weight_decay, width)
        return grid.full_line(lambda v: depth0_log_density(v, moments, T, weight_decay, width),
                          centre, sd, moments, label)
    if depth == 1:
        sign = grid.branch_sign(moments)
        mirrored = DataMoments(moments.alpha1, sign * moments.alpha2, moments.alpha3,
                               moments.beta1, sign * moments.beta2)
        grid.require_nonzero_branch(moments, depth, T, weight_decay)
        return grid.half_line(lambda v: depth1_log_density(sign * v, mirrored, T, weight_decay),
                          moments, sign, label)
    raise UsageError(f"depth must be 0 or 1 for a closed form; got {depth} (use stationary_density)",
                     name="depth")
