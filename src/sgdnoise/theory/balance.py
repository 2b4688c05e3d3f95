r"""Law of balance and stationary distributions of diagonal linear networks.

Ziyin, Li, Ueda, "Noise balance and stationary distribution of stochastic
gradient descent", arXiv 2308.06671 (docs/theory.md §6).  Notation of
:mod:`sgdnoise.problems.diagonal`: ``v = sum_i prod_k u_i^(k)`` of width ``d``
and depth ``D``, loss ``(v x - y)^2 + gamma |theta|^2``, data moments
``alpha_1..3``, ``beta_1,2``, ``Delta = alpha_1 alpha_3 - alpha_2^2`` and
``g(v) = alpha_1 v^2 - 2 alpha_2 v + alpha_3``.  Continuous-time SGD is the Ito
SDE ``d theta = -grad L dt + sqrt(T Sigma_1(theta)) dW`` with ``T = lr / S``;
its noise is rank one, ``Sigma_1 = 4 g(v) grad v grad v^T``.

Every density here is the zero-flux stationary solution of the one-dimensional
SDE that ``v`` obeys on the balanced manifold (all ``|u_i^(k)|`` equal):

.. math::

    dv = \big[-d (D+1) |v/d|^{2D/(D+1)} m(v) - 2\gamma (D+1) v
          + \mathrm{sgn}(v)\, d\, \tfrac{D(D+1)}{2} |v/d|^{(3D-1)/(D+1)} 4 T g(v)\big] dt
         + d (D+1) |v/d|^{2D/(D+1)}\, 2\sqrt{T g(v)}\, dW,

``m(v) = 2 (beta_1 v - beta_2)``, so that ``p ∝ B^{-1} exp(∫ 2 mu / B)`` with
``mu`` the drift and ``B`` the squared diffusion.  The general-depth formula
(Theorem 4.2 of the paper) is evaluated by quadrature; depths 0 and 1 also
have closed forms (the paper's depth-0 and depth-1 solutions, which precede the
theorem), which the tests hold against it.  Equation numbers of the paper are not
quoted except Theorem 4.2; the formulas are stated in full instead (docs/theory.md §6).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.integrate import cumulative_trapezoid, trapezoid

from sgdnoise.errors import UsageError
from sgdnoise.problems.diagonal import DataMoments

#: Grid ends relative to the scale of v: far enough that the mass outside is
#: given to double precision by the power-law end corrections.
_LOW, _HIGH = 1e-15, 1e12
_MIN_POINTS, _MAX_POINTS = 20_001, 2_000_001
_POINTS_PER_WIDTH = 1600


def _check_temperature(T: float) -> None:
    if not (math.isfinite(T) and T > 0):
        raise UsageError(f"--T must be a finite number > 0; got {T}")


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
                            discrete: bool = False) -> np.ndarray:
    """Predicted ``log|u_k^2 - u_{k+1}^2|(t) - log|.|(0)`` along recorded paths.

    Integrates the law of balance (:func:`balance_rate`) along each path:
    ``-int_0^t [4 T g(v) P_k + 4 gamma] dt`` with ``P_k = prod_{j != k, k+1} u_j^2``,
    from ``integrals[..., 0:3] = int (P_k, v P_k, v^2 P_k) dt``.  With ``discrete`` the
    first-order effect of finite steps ``dt`` (SGD: ``dt = lr``) is added: one step
    multiplies the imbalance by ``(1 - 2 gamma dt)^2 - dt^2 G^2 P_k`` with ``G`` the
    (batch or Euler-Maruyama) gradient along ``v``, and ``E[dt^2 G^2] = 4 T g dt + m^2 dt^2``,
    so ``-sum dt^2 m(v)^2 P_k`` is added, ``m = 2 (beta_1 v - beta_2)`` (from
    ``integrals[..., 3:6]``).  The next terms are ``O(dt^2)`` per unit time.

    Parameters
    ----------
    integrals : ndarray (..., 6)
        The path sums recorded by the simulators, for one pair of layers.
    times : ndarray
        Broadcastable to ``integrals[..., 0]``.
    """
    a1, a2, a3 = moments.alpha1, moments.alpha2, moments.alpha3
    I0, I1, I2, J0, J1, J2 = np.moveaxis(np.asarray(integrals, dtype=np.float64), -1, 0)
    log_ratio = -4.0 * T * (a1 * I2 - 2.0 * a2 * I1 + a3 * I0) - 4.0 * weight_decay * times
    if discrete:
        b1, b2 = moments.beta1, moments.beta2
        log_ratio = log_ratio - 4.0 * (b1 * b1 * J2 - 2.0 * b1 * b2 * J1 + b2 * b2 * J0)
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


# --- closed forms ----------------------------------------------------------------------------

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


# --- the density object ----------------------------------------------------------------------

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


def _half_line(log_pdf: Callable[[np.ndarray], np.ndarray], moments: DataMoments, sign: float,
               label: str) -> StationaryDensity:
    """Tabulate a branch ``v = sign * exp(t)`` with ``t`` uniform over 27 decades."""
    scale = v_scale(moments)
    t_range = (math.log(_LOW * scale), math.log(_HIGH * scale))
    return _tabulate(log_pdf, lambda t: sign * np.exp(t), np.exp, t_range, label)


def _full_line(log_pdf: Callable[[np.ndarray], np.ndarray], centre: float, width: float,
               moments: DataMoments, label: str) -> StationaryDensity:
    """Tabulate on ``v = centre + width sinh(t)``: linear near the centre, logarithmic far out."""
    t_max = math.asinh(_HIGH * v_scale(moments) / width)
    return _tabulate(log_pdf, lambda t: centre + width * np.sinh(t),
                     lambda t: width * np.cosh(t), (-t_max, t_max), label)


def _branch_sign(moments: DataMoments) -> float:
    return 1.0 if moments.beta2 >= 0 else -1.0


def _depth0_centre_width(moments: DataMoments, T: float, weight_decay: float,
                         width: int) -> tuple[float, float]:
    """Mean and linear-noise standard deviation of the depth-0 process (grid placement only)."""
    b1 = moments.beta1 + weight_decay / width
    centre = moments.beta2 / b1
    return centre, math.sqrt(width * T * float(moments.noise(centre)) / b1)


def closed_form_density(moments: DataMoments, depth: int, T: float, weight_decay: float = 0.0,
                        width: int = 1) -> StationaryDensity:
    """The normalised closed-form density for ``D = 0`` or ``D = 1`` (see the log-densities)."""
    _check_temperature(T)
    label = f"D={depth}, d={width}, T={T:g} (closed form)"
    if depth == 0:
        centre, sd = _depth0_centre_width(moments, T, weight_decay, width)
        return _full_line(lambda v: depth0_log_density(v, moments, T, weight_decay, width),
                          centre, sd, moments, label)
    if depth == 1:
        sign = _branch_sign(moments)
        mirrored = DataMoments(moments.alpha1, sign * moments.alpha2, moments.alpha3,
                               moments.beta1, sign * moments.beta2)
        _require_nonzero_branch(moments, depth, T, weight_decay)
        return _half_line(lambda v: depth1_log_density(sign * v, mirrored, T, weight_decay),
                          moments, sign, label)
    raise UsageError(f"closed forms exist for --depth 0 and 1; got {depth} (use the quadrature)")


def _require_nonzero_branch(moments: DataMoments, depth: int, T: float,
                            weight_decay: float) -> None:
    T_c = critical_temperature(moments, depth, weight_decay)
    if T >= T_c:
        raise UsageError(f"T = {T:g} >= T_c = {T_c:.6g} at depth {depth}: the stationary "
                         "distribution is delta(v) (all weights 0); no density to show")


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
    _check_temperature(T)
    if depth < 0 or width < 1:
        raise UsageError(f"--depth must be >= 0 and --width >= 1; got {depth}, {width}")
    label = f"D={depth}, d={width}, T={T:g}"
    D = float(depth)
    drift_coef = 1.0 / effective_temperature(T, depth, width)
    decay_coef = weight_decay * width ** ((D - 1.0) / (D + 1.0)) * drift_coef
    if depth == 0:
        centre, sd = _depth0_centre_width(moments, T, weight_decay, width)

        def log_pdf(v: np.ndarray) -> np.ndarray:
            # F' = [(beta_1 v - beta_2)/(d T) + gamma v/(d^2 T)] / g(v), integrated from the centre
            integrand = (drift_coef * (moments.beta1 * v - moments.beta2)
                         + decay_coef * v) / moments.noise(v)
            return -np.log(moments.noise(v)) - _integral_from(v, integrand, centre)

        return _full_line(log_pdf, centre, sd, moments, label)
    _require_nonzero_branch(moments, depth, T, weight_decay)
    sign = _branch_sign(moments)
    log_pdf = _theorem42_log_density(moments, sign, 3.0 * D / (D + 1.0), 2.0 * D / (D + 1.0),
                                     drift_coef, (3.0 * D - 1.0) / (D + 1.0), decay_coef)
    return _half_line(log_pdf, moments, sign, label)


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
        raise UsageError(f"tau = T D / d must be a finite number > 0; got {tau}")
    sign = _branch_sign(moments)
    log_pdf = _theorem42_log_density(moments, sign, 3.0, 2.0, 1.0 / tau, 3.0, 0.0)
    return _half_line(log_pdf, moments, sign, f"D=inf, T D/d={tau:g}")


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


def _truncated_mean_log(e: float, a: float, b: float) -> float:
    """``E[log s]`` for ``p(s) ∝ s^e`` on ``[e^a, e^b]`` (``∝ exp((e+1) x)`` in ``x = log s``)."""
    c = e + 1.0
    if abs(c * (b - a)) < 1e-8:
        return 0.5 * (a + b)
    return (b * math.exp(c * (b - a)) - a) / math.expm1(c * (b - a)) - 1.0 / c


def truncated_power_law_mle(mean_log: float, low: float, high: float) -> tuple[float, float]:
    """Maximum-likelihood exponent of ``p(s) ∝ s^e`` on ``[low, high]`` from ``mean(log s)``.

    Returns ``e`` and ``Var_e[log s]``, the Fisher information per sample (``d E_e[log s] / de``
    for this exponential family), so that ``SE(e) = SE(mean log s) / Var_e[log s]``.
    """
    from scipy.optimize import brentq

    a, b = math.log(low), math.log(high)
    e = brentq(lambda x: _truncated_mean_log(x, a, b) - mean_log, -60.0, 60.0)
    step = 1e-4
    info = (_truncated_mean_log(e + step, a, b) - _truncated_mean_log(e - step, a, b)) / (2 * step)
    return e, info
