"""The epoch-start covariance of epoch SGD with heavy-ball momentum, at leading order in lr (docs/theory.md §3h).

Extends :mod:`sgdnoise.theory.epoch_kick` (beta = 0) to momentum beta.  With
``u = delta + beta v / (1 - beta)`` (the point the weights would reach if the gradients stopped)
one step is exactly ``u' = u - eta/(1 - beta) (H_B delta + g_B)``.  Every example is used once
per epoch, so ``sum_k H_{B_k} = M H`` and ``sum_k g_{B_k} = 0``; attributing every kick to the
epoch whose gradients caused it, the epoch's kick on ``u`` is, at order eta^2,

    B = eta^2/(1 - beta)^2 [ (1/S) Lambda sum_nu c_nu w_nu + (1/S^2) sum_{mu != nu} omega_{mu nu} h_mu w_nu ]
        - eta^2/(1 - beta)^2 sum_{m >= 0} beta^m h_{B'_m} G',

``c_nu = M - 1 - t_nu`` (the constant -beta/(1 - beta) that the velocity in flight adds drops out
because ``sum w = 0``), ``omega_{mu nu} = (1 - beta^(t_mu - t_nu)) 1{t_mu > t_nu}`` (the share of
the displacement caused by batch t_nu that has arrived when batch t_mu is used), and the last
term the Hessian fluctuations of the following epochs (batches B'_m, independent order) acting on
the displacement still in flight at the epoch end, ``G' = sum_k beta^(M - k) g_{B_k}``.  For
beta = 0: omega = theta, G' = 0, and B is §3h's ``eta^2 b~``.

Here the Lambda part is not expanded: the epoch's linear response to its gradients is kept with
the exact full-batch propagator (2 x 2 per eigendirection, state ``(delta_k, delta_{k-1})``),
``b_lin = (1/S) sum_nu kappa(t_nu) w_nu``, ``kappa(t) = -eta A^(M-1-t) e_1``, which contains
the Lambda part of B and the velocity in flight at the epoch end.  The h parts are u kicks,
added along (1, 1).  The covariance of the kick over the orders follows from the joint laws of
the batch indices of 2-4 distinct examples by Moebius inversion on the partition lattice (as
§3h; only patterns without a lone index survive), and the epoch-start covariance solves the
2 x 2 Stein equation ``Sigma_0 = F Sigma_0 F^T + K`` per direction, ``F = A^M``.  Dropped: the
fluctuations of the epoch map acting on the state (relative order eta^3 / lambda in the flat
directions) and terms of second order in h (order eta^3).
"""
from __future__ import annotations

import numpy as np

from sgdnoise.errors import UsageError


def _partitions(elements: list[int]) -> list[list[list[int]]]:
    """Every set partition of ``elements`` (lists of blocks)."""
    if not elements:
        return [[]]
    first, rest = elements[0], elements[1:]
    out = []
    for part in _partitions(rest):
        out.append([[first]] + part)
        for k in range(len(part)):
            out.append(part[:k] + [[first] + part[k]] + part[k + 1:])
    return out


def _moebius(fine: list[list[int]], coarse: list[list[int]]) -> int | None:
    """Moebius function mu(fine, coarse) of the partition lattice, None unless fine <= coarse."""
    value = 1
    for block in coarse:
        inside = [b for b in fine if set(b) <= set(block)]
        if sum(len(b) for b in inside) != len(block):
            return None
        k = len(inside)
        value *= (-1) ** (k - 1) * int(np.prod(np.arange(1, k)))
    return value


def _laws(P: int, S: int) -> tuple[np.ndarray, np.ndarray]:
    """Joint law of the batch indices of 2 and 3 distinct examples in a random order, (M, M) and (M, M, M)."""
    M = P // S
    eq = np.eye(M)
    p2 = S * (S - eq) / (P * (P - 1))
    p3 = (S * (S - eq)[:, :, None] * (S - eq[:, None, :] - eq[None, :, :])) / (P * (P - 1) * (P - 2))
    return p2, p3


def _expect(omega: np.ndarray, blocks_of: list[int], k: int, p2: np.ndarray, p3: np.ndarray) -> float:
    """E[omega(x_a, x_b) omega(x_c, x_d)] over k in {2, 3} distinct examples, (a, b, c, d) = blocks_of."""
    M = omega.shape[0]
    grids = np.meshgrid(*([np.arange(M)] * k), indexing="ij")
    a, b, c, d = (grids[i] for i in blocks_of)
    return float(np.sum((p2 if k == 2 else p3) * omega[a, b] * omega[c, d]))


def _expect_four(omega: np.ndarray, p2: np.ndarray, P: int, S: int) -> float:
    """E[omega(t1, t2) omega(t3, t4)] for four distinct examples (conditioning on t1, t2)."""
    tot = omega.sum()
    row, col = omega.sum(1), omega.sum(0)
    d = np.diag(omega)
    inner = (S * S * tot - S * (row[:, None] + row[None, :] + col[:, None] + col[None, :])
             + d[:, None] + d[None, :] + omega + omega.T)
    return float(np.sum(p2 * omega * inner) / ((P - 2) * (P - 3)))


def pair_weight_coefficients(P: int, S: int, momentum: float) -> dict[str, float]:
    """Coefficients of Cov(b_h^omega) on U_1, u u^T, U_B, U_C (docs/theory.md §3h, "With momentum").

    ``b_h^omega = (1/S^2) sum_{mu != nu} omega_{mu nu} h_mu w_nu`` (module notes).  Index slots
    (0, 1, 2, 3) = (mu, nu, mu', nu') of ``h_mu w_nu w_nu'^T h_mu'``; every pattern pi of
    coincidences has the expectation ``E_pi``; the unrestricted sums that survive (no lone index)
    are A = {mu nu}{mu' nu'} (u u^T), B = {mu mu'}{nu nu'} (U_B), C = {mu nu'}{nu mu'} (U_C) and
    the all-equal one (U_1), each with ``sum_{pi <= sigma} E_pi mu(pi, sigma)``.  ``q`` = E[omega],
    the mean of b_h^omega is ``-q u / S^2`` (the A coefficient here is already centred).
    """
    M = P // S
    lag = np.arange(M)[:, None] - np.arange(M)[None, :]
    omega = np.where(lag > 0, 1.0 - momentum ** np.maximum(lag, 0), 0.0)
    p2, p3 = _laws(P, S)
    q = float(np.sum(p2 * omega))
    expectations = []
    for pi in _partitions([0, 1, 2, 3]):
        block = {e: i for i, b in enumerate(pi) for e in b}
        if block[0] == block[1] or block[2] == block[3]:
            continue
        k = len(pi)
        slots = [block[e] for e in range(4)]
        value = _expect_four(omega, p2, P, S) if k == 4 else _expect(omega, slots, k, p2, p3)
        expectations.append((pi, value))
    targets = {"A": [[0, 1], [2, 3]], "B": [[0, 2], [1, 3]], "C": [[0, 3], [1, 2]], "1": [[0, 1, 2, 3]]}
    out = {"q": q}
    for name, sigma in targets.items():
        out[name] = sum(v * m for pi, v in expectations if (m := _moebius(pi, sigma)) is not None)
    out["A"] -= q * q
    return out


def _propagators(lam: np.ndarray, lr: float, momentum: float, M: int) -> np.ndarray:
    """Full-batch step powers ``A^j`` per direction, j = 0..M, shape (M + 1, n, 2, 2)."""
    n = lam.size
    A = np.zeros((n, 2, 2))
    A[:, 0, 0] = 1 + momentum - lr * lam
    A[:, 0, 1] = -momentum
    A[:, 1, 0] = 1.0
    out = np.empty((M + 1, n, 2, 2))
    out[0] = np.eye(2)
    for j in range(M):
        out[j + 1] = A @ out[j]
    return out


def start_covariance_momentum(Z: np.ndarray, r: np.ndarray, lam: np.ndarray, lr: float, S: int,
                              momentum: float) -> dict[str, np.ndarray]:
    """Epoch-start variance per eigendirection at leading order, with momentum (docs/theory.md §3h).

    ``Z`` (P, n) inputs in the eigenbasis of H (ascending ``lam``), ``r`` residuals at w*.
    Returns ``var_theta_start`` (n,), ``sigma0`` (n, 2, 2) the start covariance of
    ``(delta_k, delta_{k-1})`` per direction, ``kick`` (n, 2, 2) its per-epoch source ``K`` and
    ``carry`` (n,): ``(1/M) sum_j ((A^j (1, 1))_0)^2``, the time-averaged variance that a unit
    epoch-start variance along (1, 1) leaves (used by :func:`start_corrected_moments`).
    Cost: P^2 N + P N^2 (the sums U_B, U_C) plus M^3 for the order laws.
    """
    P, n = Z.shape
    if P % S:
        raise UsageError(f"the epoch kick needs batch_size dividing P; got P = {P}, batch_size = {S}",
                         name="batch_size")
    M, beta = P // S, float(momentum)
    co = pair_weight_coefficients(P, S, beta)
    w = Z * r[:, None]
    z2 = np.sum(Z * Z, axis=1)
    a = r[:, None] * (z2[:, None] * Z - Z * lam)  # h_mu w_mu
    u = a.sum(axis=0)
    cw = np.sum(w * w, axis=0)  # diag C_w
    s = np.einsum("pi,ij,pj->p", Z, w.T @ w, Z)  # z_mu^T C_w z_mu
    ub = (Z * Z).T @ s - P * lam ** 2 * cw  # diag U_B
    G = Z @ Z.T
    uc = np.einsum("pi,pq,qi->i", Z, np.outer(r, r) * G * G, Z)  # diag U_C
    u1 = np.sum(a * a, axis=0)
    var_h = (co["1"] * u1 + co["A"] * u * u + co["B"] * ub + co["C"] * uc) / S ** 4
    # Hessian fluctuations of the following epochs on the displacement in flight at the epoch end
    p2, p3 = _laws(P, S)
    fl = beta ** (M - np.arange(M))
    y_coef = (np.mean(fl ** 2) - fl @ p2 @ fl) / S ** 2
    geo, geo2 = np.sum(beta ** np.arange(M)), np.sum(beta ** (2 * np.arange(M)))
    out_coef = (P / (S * (P - 1)) * geo2 - geo ** 2 / (P - 1)) / (1 - beta ** (2 * M))
    var_out = out_coef * y_coef * ub / P
    # the linear response with the exact full-batch propagator
    pw = _propagators(lam, lr, beta, M)
    kappa = -lr * pw[M - 1 - np.arange(M), :, :, 0]  # (M, n, 2): kappa(t) = -eta A^(M-1-t) e_1
    e1 = np.einsum("tia,tib->iab", kappa, kappa) / M
    e2 = np.einsum("st,sia,tib->iab", p2, kappa, kappa)
    cov_lin = (e1 - e2) * cw[:, None, None] / S ** 2
    # Cov(b_lin, b_h^omega): only the all-equal pattern survives, sum_mu w_mu a_mu
    lag = np.arange(M)[:, None] - np.arange(M)[None, :]
    omega = np.where(lag > 0, 1.0 - beta ** np.maximum(lag, 0), 0.0)
    pm = 1.0 / M
    m3 = np.einsum("abc,bc->a", p3, omega) - pm * co["q"]
    m_mu = np.sum(p2 * omega, axis=1) - pm * co["q"]  # nu' = mu = a
    m_nu = np.sum(p2 * omega, axis=0) - pm * co["q"]  # nu' = nu = a
    weights = 2 * m3 - m_mu - m_nu
    cross = np.einsum("a,aik->ik", weights, kappa) * np.sum(w * a, axis=0)[:, None] / S ** 3  # (n, 2)
    scale = lr ** 2 / (1 - beta) ** 2
    one = np.ones(2)
    K = (cov_lin + scale ** 2 * (var_h + var_out)[:, None, None] * np.outer(one, one)
         + scale * (cross[:, :, None] * one + one[:, None] * cross[:, None, :]))
    F = pw[M]
    lhs = np.eye(4) - np.einsum("iab,icd->iacbd", F, F).reshape(n, 4, 4)
    sigma0 = np.linalg.solve(lhs, K.reshape(n, 4, 1)).reshape(n, 2, 2)
    carry = np.mean((pw[:M] @ one)[:, :, 0] ** 2, axis=0)
    return {"var_theta_start": sigma0[:, 0, 0], "sigma0": sigma0, "kick": K, "carry": carry,
            "var_out": scale ** 2 * var_out,
            "mean_kick": -scale * co["q"] * u / S ** 2}


def start_corrected_var_theta_momentum(var_theta: np.ndarray, var_theta_start: np.ndarray, Z: np.ndarray,
                                       r: np.ndarray, lam: np.ndarray, lr: float, S: int,
                                       momentum: float) -> np.ndarray:
    """A closure's time-averaged Var theta with its epoch-start variance replaced (docs/theory.md §3h).

    ``d_i = Sigma_0,ii - var_theta_start_i`` (:func:`start_covariance_momentum`) is taken to lie
    along the slow mode (1, 1) of ``(delta_k, delta_{k-1})`` and carried through the epoch by the
    full-batch map: ``var_theta_i + d_i carry_i``.  For beta = 0 this is
    :func:`sgdnoise.theory.epoch_kick.start_corrected_var_theta` with the linear part of the kick
    not expanded in lr.
    """
    res = start_covariance_momentum(Z, r, lam, lr, S, momentum)
    return var_theta + (res["var_theta_start"] - var_theta_start) * res["carry"]
