r"""Rates of the diagonal network: law of balance, growth of ``log|v|`` at 0, ``T_c``, tails.

Ziyin, Li, Ueda, arXiv 2308.06671 (docs/theory.md §6, §6a); notation of
:mod:`sgdnoise.theory.balance`.
"""
from __future__ import annotations

import math

import numpy as np

from sgdnoise._spec import check_positive
from sgdnoise.errors import UsageError
from sgdnoise.problems.diagonal import DataMoments


def check_temperature(T: float) -> None:
    """Raise :class:`UsageError` naming ``T`` unless it is a finite number > 0."""
    check_positive("T", T)


def balance_rate(moments: DataMoments, v: np.ndarray | float, T: float,
                 weight_decay: float = 0.0, others_squared: np.ndarray | float = 1.0) -> np.ndarray:
    r"""Decay rate of the imbalance ``u_k^2 - u_k'^2`` of two layers of one path.

    Law of balance (Ziyin, Li, Ueda, arXiv 2308.06671, the theorem on rescaling
    symmetry; docs/theory.md §6a).
    Ito's formula for two layers ``k, k'`` of a path of the SDE gives

    .. math::

        \frac{d}{dt}\big(u_k^2 - u_{k'}^2\big)
          = -\Big[T C_0(v) \prod_{j \ne k, k'} u_j^2 + 4\gamma\Big]
             \big(u_k^2 - u_{k'}^2\big),
        \qquad C_0(v) = \mathrm{Var}\Big[\frac{\partial \ell}{\partial v}\Big] = 4 g(v),

    a decay without noise: gradient flow (``T = 0``, ``gamma = 0``) conserves the
    difference, noise drives it to zero.  For the scalar ``u w`` model the product is
    empty (``others_squared = 1``).  With the penalty ``gamma |theta|^2`` in the loss
    (the convention that gives ``T_c = (beta_2 - gamma)/alpha_3``) the decay adds
    ``4 gamma``; the form "``T C_0 + gamma``" found in summaries is the same law for a penalty
    ``(gamma/4)|theta|^2``.

    Returns
    -------
    ndarray
        The rate, broadcast over ``v`` and ``others_squared`` (units 1/time).
    """
    return 4.0 * T * moments.noise(v) * others_squared + 4.0 * weight_decay


def predicted_log_imbalance(moments: DataMoments, T: float, weight_decay: float,
                            integrals: np.ndarray, times: np.ndarray,
                            discrete: bool = False, gaussian_steps: bool = False) -> np.ndarray:
    """Predicted ``log|u_k^2 - u_{k+1}^2|(t) - log|.|(0)`` along recorded paths.

    Integrates the law of balance (:func:`balance_rate`) along each path:
    ``-int_0^t [4 T g(v) P_k + 4 gamma] dt`` with ``P_k = prod_{j != k, k+1} u_j^2``,
    from ``integrals[..., 0:3] = int (P_k, v P_k, v^2 P_k) dt``.  With ``discrete`` the
    first-order effect of finite steps ``dt`` (SGD: ``dt = lr``) is added: one step
    multiplies the imbalance by ``(1 - 2 gamma dt)^2 - dt^2 G^2 P_k`` with ``G`` the
    (batch or Euler-Maruyama) gradient along ``v``, and ``E[dt^2 G^2] = 4 T g dt + m^2 dt^2``,
    so ``-sum dt^2 m(v)^2 P_k`` is added, ``m = 2 (beta_1 v - beta_2)`` (from
    ``integrals[..., 3:6]``).  With ``gaussian_steps`` (Euler-Maruyama, whose step
    ``c = -m dt + sigma sqrt(dt) xi`` is Gaussian) the second order of ``-log|1 - c^2 P_k|``,
    ``E[c^4] P_k^2 / 2 = (3/2) sigma^4 dt^2 P_k^2 + O(dt^3)`` with ``sigma^2 = 4 T g``, is added
    too: ``-24 T^2 sum dt^2 P_k^2 g(v)^2`` (from ``integrals[..., 6:11]``; docs/theory.md §6d).

    Parameters
    ----------
    integrals : ndarray (..., 11)
        The path sums recorded by the simulators, for one pair of layers.
    times : ndarray
        Broadcastable to ``integrals[..., 0]``.
    """
    a1, a2, a3 = moments.alpha1, moments.alpha2, moments.alpha3
    sums = np.moveaxis(np.asarray(integrals, dtype=np.float64), -1, 0)
    I0, I1, I2, J0, J1, J2 = sums[:6]
    log_ratio = -4.0 * T * (a1 * I2 - 2.0 * a2 * I1 + a3 * I0) - 4.0 * weight_decay * times
    if discrete or gaussian_steps:
        b1, b2 = moments.beta1, moments.beta2
        log_ratio = log_ratio - 4.0 * (b1 * b1 * J2 - 2.0 * b1 * b2 * J1 + b2 * b2 * J0)
    if gaussian_steps:
        K0, K1, K2, K3, K4 = sums[6:11]
        g_squared = (a1 * a1 * K4 - 4.0 * a1 * a2 * K3 + (4.0 * a2 * a2 + 2.0 * a1 * a3) * K2
                     - 4.0 * a2 * a3 * K1 + a3 * a3 * K0)
        log_ratio = log_ratio - 24.0 * T * T * g_squared
    return log_ratio


def growth_rate_at_origin(moments: DataMoments, T: float, weight_decay: float = 0.0) -> float:
    """Rate of ``log|v|`` near ``v = 0`` for ``D = 1`` on the balanced manifold.

    Linearising the depth-1 SDE of :func:`depth1_log_density` at ``v -> 0`` (``g -> alpha_3``,
    ``m -> -2 beta_2``) gives ``d log v = [4 (|beta_2| - gamma) - 4 T alpha_3] dt
    + 4 sqrt(T alpha_3) dW``: positive below ``T_c`` (escape from 0), negative above
    (collapse), the dynamical meaning of :func:`critical_temperature`.
    """
    return 4.0 * (abs(moments.beta2) - weight_decay) - 4.0 * T * moments.alpha3


def sgd_growth_rate_at_origin(batch_gradients: np.ndarray, lr: float,
                              weight_decay: float = 0.0) -> float:
    """Finite-learning-rate counterpart of :func:`growth_rate_at_origin` (``D = 1``, ``d = 1``).

    Near 0, balanced SGD (``u = w``) is linear: ``u <- u (1 - lr G_0 - 2 lr gamma)`` with
    ``G_0 = -(2/S) sum_s x_s y_s`` the batch gradient along ``v`` at ``v = 0``, so per unit
    time (``lr`` per step) ``log v`` grows at ``(2/lr) E log|1 - lr G_0 - 2 lr gamma|``,
    estimated here over the given draws of ``G_0``.  Not in the paper: it shows how the
    critical temperature of SGD moves away from ``T_c`` when ``lr`` is not small (its
    expansion gives ``4 beta_2 - 4 T alpha_3 - 4 lr beta_2^2 + O(lr^2)`` for ``gamma = 0``).
    """
    G0 = np.asarray(batch_gradients, dtype=np.float64)
    return float(2.0 / lr * np.mean(np.log(np.abs(1.0 - lr * G0 - 2.0 * lr * weight_decay))))


def critical_temperature(moments: DataMoments, depth: int, weight_decay: float = 0.0) -> float:
    r"""Temperature above which the stationary distribution is ``delta(v)``.

    For ``D = 1`` (Ziyin, Li, Ueda, depth-1 solution; docs/theory.md §6) the density near 0
    behaves as ``|v|^(beta_2'/(2 T alpha_3) - 3/2)`` with ``beta_2' = |beta_2| - gamma``,
    normalisable only for

    .. math::  T < T_c = \frac{|\beta_2| - \gamma}{\alpha_3};

    above it ``u = w = 0``: ``log |v|`` drifts at the rate ``4 alpha_3 (T_c - T)``.
    ``D = 0`` has no transition (``inf``).  For ``D >= 2`` and ``gamma = 0`` the
    nonzero branch of Theorem 4.2 is normalisable at every ``T`` (``inf``; its weight
    ``z`` next to ``delta(v)`` depends on the initial state: broken ergodicity); with
    ``gamma > 0`` the penalty dominates the loss gradient near 0 and no nonzero branch
    is normalisable (``0``).  ``0`` is also returned when ``|beta_2| <= gamma``.
    """
    if depth == 0:
        return math.inf
    if depth == 1:
        return max(0.0, (abs(moments.beta2) - weight_decay) / moments.alpha3)
    return math.inf if (weight_decay == 0 and moments.beta2 != 0) else 0.0


def tail_exponent(depth: int | float, moments: DataMoments | None = None, T: float | None = None,
                  width: int = 1, weight_decay: float = 0.0) -> float:
    """Exponent ``e`` of the tail ``p(v) ~ |v|^e`` for ``|v| -> inf``.

    ``D >= 1`` (Ziyin, Li, Ueda, Theorem 4.2): ``e = -5 + 3/(D+1)`` from
    ``|v|^(-3 D/(D+1)) g(v)^-1``, the exponential factor tending to a constant;
    ``D = inf`` gives ``-5``.  ``D = 0``: the exponential contributes a power,
    ``e = -2 - (beta_1 + gamma/d)/(d T alpha_1)``, and ``moments`` and ``T`` are needed.
    """
    if depth == 0:
        if moments is None or T is None:
            raise UsageError("tail_exponent: depth 0 needs the data moments and T")
        return -2.0 - (moments.beta1 + weight_decay / width) / (width * T * moments.alpha1)
    return -5.0 + 3.0 / (depth + 1.0)


def effective_temperature(T: float, depth: int, width: int) -> float:
    """``T (D+1) / d^((D-1)/(D+1))``: with ``D``, all the density depends on (Theorem 4.2).

    For ``D -> inf`` it tends to ``T D / d = (lr/S)(D/d)``: the infinite-depth
    scaling law, ``(d/D)(S/lr)`` fixed gives the same distribution.
    """
    return T * (depth + 1.0) / width ** ((depth - 1.0) / (depth + 1.0))
