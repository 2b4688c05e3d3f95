"""The second-order epoch kick of epoch SGD on linear regression, in closed form (docs/theory.md §3h).

Plain SGD (beta = 0), S dividing P (no example dropped).  Over one epoch of M = P / S batches
the state at the epoch start maps to

    delta' = Phi delta + b,   Phi = prod_k (I - eta H_{B_k}),
    b = -eta sum_k g_{B_k} + eta^2 sum_{k' > k} H_{B_k'} g_{B_k} + O(eta^3),

with ``g_B = (1/S) sum_{mu in B} z_mu r_mu`` the batch gradient at w*.  Every example is used
once, so ``sum_k g_{B_k} = 0``: the epoch kick is second order,
``b = eta^2 b~ + O(eta^3)``, ``b~ = b_Lambda + b_h`` with

    b_Lambda = (1/S) Lambda sum_nu c_nu w_nu,              c_nu = M - 1 - t_nu,
    b_h = (1/S^2) sum_{mu != nu} theta_{mu nu} h_mu w_nu,   theta_{mu nu} = 1{t_mu > t_nu},

``w_nu = z_nu r_nu`` (sum zero), ``h_mu = z_mu z_mu^T - Lambda`` (sum zero), ``t`` the batch index
of an example in a uniformly random order.  ``b_Lambda`` is additive noise (what Kuehn-Rosenow
and §3e describe); ``b_h`` is the kick that the per-batch Hessian of a later batch gives to the
displacement caused by the residuals of an earlier one.  Their covariance over the orders is a
sum over coincidence patterns of the indices; because ``sum w = sum h = 0`` only patterns
without a lone index survive (Moebius inversion on the partition lattice), leaving sums over
one or two examples (:func:`epoch_kick_covariance`).

At leading order in eta the epoch-start covariance is then
``Sigma_0,ij = eta^4 Cov(b~)_ij / (1 - phi_i phi_j)``, ``phi = (1 - eta lambda)^M``
(:func:`leading_order_start_covariance`), checked against the exact reference of §3f.
"""
from __future__ import annotations

import numpy as np

from sgdnoise.errors import UsageError


def order_probabilities(P: int, S: int) -> dict[str, float]:
    """Joint laws of the batch indices of 2-4 distinct examples in a random order (docs/theory.md §3h).

    ``q = P(t1 > t2)``, ``f_sm = P(t1 > t2, t1 > t3)`` (= ``P(t1 > t3, t2 > t3)``),
    ``f_ch = P(t1 > t2 > t3)``, ``f_4 = P(t1 > t2, t3 > t4)`` and the covariances of the batch
    index with theta: ``k_nu = Cov(t_nu, theta_{mu nu})``, ``k_mu = Cov(t_mu, theta_{mu nu})``,
    ``k_3 = Cov(t_sigma, theta_{mu nu})`` for a third example sigma.
    """
    M = P // S
    s2 = (S - 1) / (P - 1)
    s3 = (S - 1) * (S - 2) / ((P - 1) * (P - 2))
    d3 = 1 - 3 * s2 + 2 * s3  # all three in different batches
    e22 = s2 * ((S - 2) * (S - 3) + (M - 1) * S * (S - 1)) / ((P - 2) * (P - 3))
    q = (1 - s2) / 2
    k = np.arange(M)
    k_nu = float(np.sum(k * (M - 1 - k))) * S / (M * (P - 1)) - (M - 1) * q / 2
    k_mu = float(np.sum(k * k)) * S / (M * (P - 1)) - (M - 1) * q / 2
    return {"q": q, "f_sm": d3 / 3 + (s2 - s3) / 2, "f_ch": d3 / 6, "f_4": (1 - 2 * s2 + e22) / 4,
            "k_nu": k_nu, "k_mu": k_mu, "k_3": -(k_nu + k_mu) / (P - 2), "var_c": (M * M - 1) / 12}


def epoch_kick_covariance(Z: np.ndarray, r: np.ndarray, lam: np.ndarray, S: int) -> dict[str, np.ndarray]:
    """Mean and covariance over the orders of ``b~ = b_Lambda + b_h`` in the eigenbasis (docs/theory.md §3h).

    ``Z`` (P, n) inputs in the eigenbasis of H (``Z^T Z = P diag(lam)``), ``r`` (P,) residuals at
    w* (``Z^T r = 0``).  Returns ``mean``, ``cov`` (of b~) and the parts ``cov_lambda``,
    ``cov_h`` and ``cross`` (``Cov(b_Lambda, b_h)``; ``cov = cov_lambda + cov_h + cross + cross^T``).

    With ``a_mu = h_mu w_mu``, ``u = sum a_mu``, ``C_w = sum w w^T``, ``G = Z Z^T``:

    - ``U_1 = sum_mu a_mu a_mu^T`` (all four indices equal),
    - ``U_B = sum_mu h_mu C_w h_mu = Z^T diag(z_mu^T C_w z_mu) Z - P Lambda C_w Lambda``,
    - ``U_C = sum_{mu nu} h_mu w_nu w_mu^T h_nu = Z^T (r r^T o G o G) Z``,
    - ``Cov(b_h) = [g_1 U_1 + g_A u u^T + g_B U_B + g_C U_C - q^2 u u^T] / S^4`` with
      ``g_1 = -6 f_4 + 4 f_sm + 4 f_ch - q``, ``g_A = f_4``, ``g_B = q - 2 f_sm + f_4``,
      ``g_C = f_4 - 2 f_ch`` (:func:`order_probabilities`),
    - ``Cov(b_Lambda) = Var(c) P / (P - 1) Lambda C_w Lambda / S^2``,
    - ``Cov(b_Lambda, b_h) = -(2 k_3 - k_nu - k_mu) Lambda sum_mu w_mu a_mu^T / S^3``,
    - ``E[b~] = -q u / S^2``.
    """
    P, n = Z.shape
    if P % S:
        raise UsageError(f"the epoch kick needs batch_size dividing P; got P = {P}, batch_size = {S}",
                         name="batch_size")
    pr = order_probabilities(P, S)
    q, f_sm, f_ch, f_4 = pr["q"], pr["f_sm"], pr["f_ch"], pr["f_4"]
    w = Z * r[:, None]
    a = r[:, None] * (np.sum(Z * Z, axis=1)[:, None] * Z - Z * lam)  # h_mu w_mu
    u = a.sum(axis=0)
    Cw = w.T @ w
    U1 = a.T @ a
    UB = (Z.T * np.einsum("pi,ij,pj->p", Z, Cw, Z)) @ Z - P * lam[:, None] * Cw * lam
    G = Z @ Z.T
    UC = Z.T @ (np.outer(r, r) * G * G) @ Z
    uu = np.outer(u, u)
    cov_h = ((-6 * f_4 + 4 * f_sm + 4 * f_ch - q) * U1 + f_4 * uu + (q - 2 * f_sm + f_4) * UB
             + (f_4 - 2 * f_ch) * UC - q * q * uu) / S ** 4
    cov_lambda = pr["var_c"] * P / (P - 1) * lam[:, None] * Cw * lam / S ** 2
    cross = -(2 * pr["k_3"] - pr["k_nu"] - pr["k_mu"]) * lam[:, None] * (w.T @ a) / S ** 3
    cov = cov_lambda + cov_h + cross + cross.T
    return {"mean": -q * u / S ** 2, "cov": (cov + cov.T) / 2, "cov_lambda": cov_lambda, "cov_h": cov_h,
            "cross": cross}


def leading_order_start_covariance(Z: np.ndarray, r: np.ndarray, lam: np.ndarray, lr: float,
                                   S: int) -> tuple[np.ndarray, np.ndarray]:
    """Epoch-start mean and covariance of delta at leading order in lr, beta = 0 (docs/theory.md §3h).

    ``mu_0 = eta^2 E[b~] / (1 - phi)``, ``Sigma_0,ij = eta^4 Cov(b~)_ij / (1 - phi_i phi_j)``,
    ``phi = (1 - eta lambda)^M`` (the mean epoch map at first order; its O(eta^2) fluctuations
    act on a state of size O(eta) and enter at higher order).  Eigenbasis of H.
    """
    kick = epoch_kick_covariance(Z, r, lam, S)
    phi = (1 - lr * lam) ** (Z.shape[0] // S)
    return lr ** 2 * kick["mean"] / (1 - phi), lr ** 4 * kick["cov"] / (1 - np.outer(phi, phi))


def start_corrected_var_theta(var_theta: np.ndarray, var_theta_start: np.ndarray, Z: np.ndarray,
                              r: np.ndarray, lam: np.ndarray, lr: float, S: int) -> np.ndarray:
    """A time-averaged Var theta with its epoch-start part replaced at leading order (docs/theory.md §3h).

    ``var_theta`` and ``var_theta_start`` (per ascending eigendirection, e.g. of the closure
    §3g) are shifted by ``d_i = Sigma_0,ii - var_theta_start_i`` (Sigma_0 from
    :func:`leading_order_start_covariance`), carried through the epoch by the full-batch map:
    ``var_theta_i + d_i (1/M) sum_j (1 - lr lam_i)^(2j)``.  beta = 0 only; a diagnostic of the
    closure's error, valid at small lr (§3h gives its measured range).
    """
    M = Z.shape[0] // S
    _, sigma0 = leading_order_start_covariance(Z, r, lam, lr, S)
    carry = np.mean([(1 - lr * lam) ** (2 * j) for j in range(M)], axis=0)
    return var_theta + (np.diag(sigma0) - var_theta_start) * carry
