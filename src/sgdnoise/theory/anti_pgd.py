r"""Anti-PGD in the widening valley: the flatness that anti-correlated noise selects (docs/theory.md §7a).

Anti-PGD (Orvieto et al., ICML 2022) is
:math:`\theta_{n+1} = \theta_n - \eta\nabla L(\theta_n) + \xi_{n+1} - \xi_n` with i.i.d.
:math:`\xi_n \sim N(0, \sigma^2 I)`.  The auxiliary :math:`z_n = \theta_n - \xi_n` obeys
:math:`z_{n+1} = z_n - \eta\nabla L(z_n + \xi_n)` and, for :math:`n \ge 1`, :math:`\xi_n` is
independent of :math:`z_n`, so

.. math:: E[z_{n+1} \mid z_n] = z_n - \eta\nabla \tilde L(z_n), \qquad
          \tilde L(z) = E_\xi L(z + \xi).

For the widening valley :math:`L(u, v) = \frac12 v^2\|u\|^2` (:math:`u \in R^d`) the smoothing is
exact: :math:`\tilde L = \frac12 (v^2 + \sigma^2)(\|u\|^2 + d\sigma^2) = L + \frac{\sigma^2}{2}
\operatorname{tr}\nabla^2 L + \frac{d\sigma^4}{2}`, the regularised objective of Orvieto et al.
plus a constant; :math:`\operatorname{tr}\nabla^2 L = \|u\|^2 + d v^2`.  Its only minimum is
:math:`u = 0, v = 0`: the flattest point of the valley floor.  Since :math:`\xi_n` is
independent of :math:`z_n`, :math:`E\operatorname{tr}\nabla^2 L(\theta_n) = E\operatorname{tr}
\nabla^2 L(z_n) + 2 d\sigma^2` exactly.

Two predictions of the mean path (:func:`valley_leading_order`, :func:`valley_moments`):

* leading order: :math:`z` follows gradient descent on :math:`\tilde L` deterministically;
* second moments :math:`U_n = E\|u_n\|^2`, :math:`V_n = E v_n^2` of :math:`z`, with the one-step
  maps that are exact given :math:`z_n` (:func:`valley_moment_step`) and the closure
  :math:`E[v^2\|u\|^2] = UV`, :math:`E v^4 = 3V^2`.  It keeps the :math:`O(\eta^2)` scatter of
  :math:`z` (the gradient at :math:`z + \xi` is noisy), which makes :math:`z` decay faster than
  the leading order.

NumPy, float64; nothing here simulates.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sgdnoise.errors import UsageError

#: Fourth-moment ratio E v^4 / (E v^2)^2 of the closure (Gaussian).
KAPPA = 3.0


def valley_smoothed_loss(u2: np.ndarray, v2: np.ndarray, dim: int, sigma: float) -> np.ndarray:
    r""":math:`\tilde L = E_\xi L(z + \xi) = \frac12 (v^2 + \sigma^2)(\|u\|^2 + d\sigma^2)` at :math:`\|u\|^2` = ``u2``, :math:`v^2` = ``v2``."""
    return 0.5 * (np.asarray(v2) + sigma**2) * (np.asarray(u2) + dim * sigma**2)


def valley_regularised_gradient(u: np.ndarray, v: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    r""":math:`\nabla\tilde L = ((v^2 + \sigma^2) u,\; v(\|u\|^2 + d\sigma^2))` for ``u`` of shape ``(..., d)``."""
    u, v = np.asarray(u, dtype=float), np.asarray(v, dtype=float)
    dim = u.shape[-1]
    return (v**2 + sigma**2)[..., None] * u, v * ((u**2).sum(-1) + dim * sigma**2)


def valley_moment_step(U: float, V: float, lr: float, sigma: float, dim: int,
                       kappa: float = KAPPA) -> tuple[float, float]:
    r"""One Anti-PGD step of :math:`U = E\|u\|^2`, :math:`V = E v^2` of :math:`z` (docs/theory.md §7a).

    With :math:`s = \sigma^2` and :math:`W = U + d s`, given :math:`z` (exact for a point mass):

    .. math::
        U' &= U - 2\eta (V + s) U + \eta^2 (\kappa V^2 + 6 V s + 3 s^2) W, \\
        V' &= V - 2\eta V W + \eta^2 (V + s)\,(W^2 + 2 d s^2 + 4 s U),

    with :math:`E v^4 = \kappa V^2` (the closure; :math:`\kappa = 1` is exact for a point mass).
    """
    s = sigma**2
    W = U + dim * s
    return (U - 2 * lr * (V + s) * U + lr**2 * (kappa * V * V + 6 * V * s + 3 * s * s) * W,
            V - 2 * lr * V * W + lr**2 * (V + s) * (W * W + 2 * dim * s * s + 4 * s * U))


@dataclass(frozen=True)
class ValleyPrediction:
    r"""A predicted mean path of Anti-PGD (or GD for ``sigma = 0``) in the widening valley.

    ``u2``, ``v2`` are :math:`E\|u\|^2`, :math:`E v^2` of :math:`z`; ``hessian_trace`` and
    ``loss`` are :math:`E\operatorname{tr}\nabla^2 L(\theta_n)` and :math:`E L(\theta_n)` (with
    :math:`E[v^2\|u\|^2] = UV` for the loss).
    """

    step: np.ndarray
    u2: np.ndarray
    v2: np.ndarray
    hessian_trace: np.ndarray
    loss: np.ndarray


def _check(steps: int, record_every: int, lr: float, sigma: float, dim: int) -> None:
    if steps < 1 or record_every < 1 or dim < 1:
        raise UsageError(f"steps, record_every and dim must be at least 1; got {steps}, {record_every}, {dim}")
    if not (lr > 0 and sigma >= 0):
        raise UsageError(f"lr must be positive and sigma non-negative; got {lr}, {sigma}")


def _prediction(steps: int, record_every: int, first: tuple[float, float], start: tuple[float, float],
                advance, sigma: float, dim: int) -> ValleyPrediction:
    """Iterate ``advance(U, V) -> (U, V)`` from ``first`` (step 1); step 0 is the start ``start``."""
    out = [(0, *start)]
    U, V = first
    for n in range(1, steps + 1):
        if n % record_every == 0:
            out.append((n, U, V))
        U, V = advance(U, V)
    step, u2, v2 = (np.array(c, dtype=float) for c in zip(*out))
    s = sigma**2
    noise = np.where(step > 0, 2 * dim * s, 0.0)  # xi_n is independent of z_n from n = 1 on
    loss = 0.5 * (v2 + np.where(step > 0, s, 0.0)) * (u2 + np.where(step > 0, dim * s, 0.0))
    return ValleyPrediction(step.astype(int), u2, v2, u2 + dim * v2 + noise, loss)


def valley_leading_order(steps: int, lr: float, sigma: float, dim: int = 10, u0: float = 1.0,
                         v0: float = 1.0, record_every: int = 50) -> ValleyPrediction:
    r"""Leading order: :math:`z` deterministic, :math:`z_{n+1} = z_n - \eta\nabla\tilde L(z_n)` from
    :math:`z_1 = E z_1` (the first step is a GD step on :math:`L` at :math:`\theta_0`).

    With ``sigma = 0`` this is plain gradient descent from :math:`(u_0 \mathbf{1}, v_0)`.
    """
    _check(steps, record_every, lr, sigma, dim)
    s = sigma**2
    u, v = np.sqrt(dim) * abs(u0), float(v0)  # |u| and v: u stays along (1, ..., 1)

    def advance(u2: float, v2: float) -> tuple[float, float]:
        return u2 * (1 - lr * (v2 + s)) ** 2, v2 * (1 - lr * (u2 + dim * s)) ** 2

    first = (u * u * (1 - lr * v * v) ** 2, (v * (1 - lr * u * u)) ** 2)
    return _prediction(steps, record_every, first, (u * u, v * v), advance, sigma, dim)


def valley_moments(steps: int, lr: float, sigma: float, dim: int = 10, u0: float = 1.0, v0: float = 1.0,
                   record_every: int = 50, kappa: float = KAPPA) -> ValleyPrediction:
    r"""Second moments of :math:`z` by :func:`valley_moment_step`, from the exact
    :math:`z_1 = \theta_0 - \eta\nabla L(\theta_0) - \xi_0`: :math:`U_1 = \|u_1\|^2 + d\sigma^2`,
    :math:`V_1 = v_1^2 + \sigma^2`."""
    _check(steps, record_every, lr, sigma, dim)
    s = sigma**2
    u2, v2 = dim * u0**2, float(v0) ** 2
    first = (u2 * (1 - lr * v2) ** 2 + dim * s, v2 * (1 - lr * u2) ** 2 + s)
    return _prediction(steps, record_every, first, (u2, v2),
                       lambda U, V: valley_moment_step(U, V, lr, sigma, dim, kappa), sigma, dim)


def valley_stationary_trace(lr: float, sigma: float, dim: int) -> tuple[float, float]:
    r"""Where Anti-PGD ends: :math:`E\operatorname{tr}\nabla^2 L(\theta)` at the leading order,
    :math:`2 d\sigma^2`, and with the stationary scatter of :math:`z` (the fixed point of
    :func:`valley_moment_step` to first order in :math:`\eta`):
    :math:`2 d\sigma^2 + \eta\sigma^4 d (d + 5) / 2`."""
    return 2 * dim * sigma**2, 2 * dim * sigma**2 + lr * sigma**4 * dim * (dim + 5) / 2


def gradient_flow_end_trace(dim: int, u0: float, v0: float) -> float:
    r"""Gradient flow conserves :math:`\|u\|^2 - v^2`, so it stops on the floor at
    :math:`\operatorname{tr}\nabla^2 L = \|u\|^2 = d u_0^2 - v_0^2` (for :math:`d u_0^2 > v_0^2`)."""
    return dim * u0**2 - v0**2
