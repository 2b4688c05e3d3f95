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

- :mod:`.rates`: the law of balance, growth rates at ``v = 0``, ``T_c``, tail exponents;
- :mod:`.density`: the tabulated density object and its grids;
- :mod:`.closed_forms`: the depth-0 and depth-1 closed forms;
- :mod:`.general`: Theorem 4.2 for any depth, the infinite-depth limit, ``Var v`` against ``T``;
- :mod:`.finite_lr`: the exact one-step decay of the imbalance under SGD (finite ``lr``).
"""
from sgdnoise.stats.fits import truncated_power_law_mle
from sgdnoise.theory.balance.closed_forms import closed_form_density, depth0_log_density, depth1_log_density
from sgdnoise.theory.balance.density import StationaryDensity, v_scale
from sgdnoise.theory.balance.finite_lr import mean_log_abs_normal, sgd_balance_decay
from sgdnoise.theory.balance.general import (
    infinite_depth_density,
    stationary_density,
    stationary_variance,
    windowed_power_law_exponent,
)
from sgdnoise.theory.balance.rates import (
    balance_rate,
    critical_temperature,
    effective_temperature,
    growth_rate_at_origin,
    predicted_log_imbalance,
    sgd_growth_rate_at_origin,
    tail_exponent,
)

__all__ = [
    "StationaryDensity", "balance_rate", "closed_form_density", "critical_temperature", "depth0_log_density",
    "depth1_log_density", "effective_temperature", "growth_rate_at_origin", "infinite_depth_density",
    "mean_log_abs_normal", "predicted_log_imbalance", "sgd_balance_decay", "sgd_growth_rate_at_origin",
    "stationary_density", "stationary_variance",
    "tail_exponent", "truncated_power_law_mle", "v_scale", "windowed_power_law_exponent",
]
