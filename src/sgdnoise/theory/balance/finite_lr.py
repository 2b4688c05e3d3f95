r"""Finite-step corrections to the law of balance (docs/theory.md §6d).

One step of SGD (or of the Euler-Maruyama integrator of the SDE) multiplies the imbalance
of two consecutive layers ``k, k+1`` of a path by an exact factor: with ``c`` the step along
``grad v`` (SGD: ``c = -lr G``, ``G`` the batch gradient along ``v``; Euler-Maruyama:
``c = -m dt + sigma sqrt(dt) xi``), no weight decay and ``P_k = prod_{j != k,k+1} u_j^2``,

.. math::

    u_k'^2 - u_{k+1}'^2 = \big(u_k^2 - u_{k+1}^2\big)\,\big(1 - c^2 P_k\big),

because ``u_k prod_{j != k} u_j = u_{k+1} prod_{j != k+1} u_j`` (both are the path output).
So the expected decay per unit time of ``log|u_k^2 - u_{k+1}^2|`` given the state is
``h = -(1/dt) E log|1 - c^2 P_k|``; its first order is the law of balance plus the
``m^2 dt`` term (:func:`sgdnoise.theory.balance.predicted_log_imbalance`).  This module
gives ``h`` exactly for SGD on the Gaussian teacher ``y = k x + eps`` (the batch gradient is
Gaussian given ``Q = sum_s x_s^2 / s^2 ~ chi^2_S``), derived for sgdnoise.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import digamma, roots_genlaguerre
from scipy.stats import poisson

#: ``|mu|/tau`` beyond which ``E ln|Z + c|`` is its asymptotic series (error < 1e-9).
_SERIES_FROM = 12.0
_TERMS = np.arange(0, 400)


def mean_log_abs_normal(mu: np.ndarray, tau: np.ndarray) -> np.ndarray:
    r"""``E ln|X|`` for ``X ~ N(mu, tau^2)``, elementwise (``tau > 0``).

    ``X^2 / tau^2`` is non-central chi-square with one degree of freedom and
    non-centrality ``lambda = mu^2/tau^2``, a Poisson(``lambda/2``) mixture of central
    ``chi^2_{1+2j}``, and ``E ln chi^2_nu = ln 2 + psi(nu/2)``, so

    .. math::

        E\ln|X| = \ln\tau + \tfrac12\Big[\ln 2 + \sum_j \frac{e^{-\lambda/2}(\lambda/2)^j}{j!}\,
        \psi(j + \tfrac12)\Big];

    for ``|mu|/tau = c > 12`` the series ``ln c - 1/(2c^2) - 3/(4c^4) - 5/(2c^6) - 105/(8c^8)``.
    """
    mu, tau = np.broadcast_arrays(np.abs(np.asarray(mu, dtype=np.float64)), np.asarray(tau, dtype=np.float64))
    c = mu / tau
    out = np.empty(c.shape)
    far = c > _SERIES_FROM
    x = 1.0 / c[far] ** 2
    out[far] = np.log(c[far]) - x * (0.5 + x * (0.75 + x * (2.5 + x * 105.0 / 8.0)))
    near = c[~far]
    weights = poisson.pmf(_TERMS[:, None], 0.5 * near[None, :] ** 2)
    out[~far] = 0.5 * (math.log(2.0) + weights.T @ digamma(_TERMS + 0.5))
    return np.log(tau) + out


def sgd_balance_decay(v: np.ndarray, lr: float, batch: int, slope: float, noise_std: float, x_std: float,
                      weight_decay: float = 0.0, others_squared: float = 1.0, nodes: int = 96) -> np.ndarray:
    r"""Expected decay per unit time of ``log|u_k^2 - u_{k+1}^2|`` in one SGD step, exactly.

    ``h(v) = -(1/lr) E log|(1 - 2 lr gamma)^2 - lr^2 G^2 P|`` for the teacher ``y = k x + eps``,
    ``x ~ N(0, s^2)``, ``eps ~ N(0, sigma^2)``, batch size ``S``: given
    ``Q = sum_s x_s^2/s^2 ~ chi^2_S`` the batch gradient
    ``G = (2/S) sum_s x_s ((v - k) x_s - eps_s)`` is Gaussian with mean ``2 (v - k) s^2 Q/S``
    and variance ``4 sigma^2 s^2 Q / S^2``; ``log|1 - a^2 G^2| = log|1 - a G| + log|1 + a G|``
    (:func:`mean_log_abs_normal`), averaged over ``Q`` by generalised Gauss-Laguerre
    quadrature.  Its expansion in ``lr`` is ``4 T g P + 4 gamma + lr m^2 P + O(lr^2)``, the
    law of balance with the first-order term; the higher orders are large when ``G`` has
    heavy tails (``x eps``), and the series in ``lr`` diverges, so the expectation is taken
    exactly (docs/theory.md §6d).
    """
    t, w = roots_genlaguerre(nodes, 0.5 * batch - 1.0)
    w = w / w.sum()
    Q = 2.0 * t
    v = np.atleast_1d(np.asarray(v, dtype=np.float64))
    shrink = 1.0 - 2.0 * lr * weight_decay
    a = lr * math.sqrt(others_squared) / abs(shrink)
    s2 = x_std * x_std
    mean = 2.0 * (v[:, None] - slope) * s2 * Q[None, :] / batch
    sd = 2.0 * noise_std * x_std * np.sqrt(Q)[None, :] / batch
    sd = np.broadcast_to(sd, mean.shape)
    logs = mean_log_abs_normal(1.0 - a * mean, a * sd) + mean_log_abs_normal(1.0 + a * mean, a * sd)
    return -(2.0 * math.log(abs(shrink)) + logs @ w) / lr
