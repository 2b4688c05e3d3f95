"""Order statistics of ordered pairs of examples in an epoch, and the sums they weight (docs/theory.md §3h).

The pieces of :mod:`sgdnoise.theory.epoch_start`: the joint laws of the batch indices of distinct
examples in a random order, the Moebius inversion on the partition lattice that turns a covariance
over the orders of a weighted pair sum ``sum_{mu != nu} omega(t_mu, t_nu) h_mu w_nu`` into the few
unrestricted sums without a lone index (:func:`pattern_coefficients`), the pair weights (undamped,
``1 - beta^lag``, or through the full-batch propagator) and the diagonals of those sums.
"""
from __future__ import annotations

import numpy as np

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


def _pair_law(P: int, S: int) -> np.ndarray:
    """Joint law of the batch indices of 2 distinct examples in a random order, (M, M): ``S (S - d_ab) / (P (P-1))``.

    The law of 3, ``p3[a, b, c] = S (S - d_ab)(S - d_ac - d_bc) / (P (P-1) (P-2))``, is never formed
    (M^3): :func:`_triple_sum` and :func:`_triple_marginal` contract through its deltas.
    """
    M = P // S
    return S * (S - np.eye(M)) / (P * (P - 1))



def _triple_sum(spec_f: str, spec_g: str, out: str, F: np.ndarray, G: np.ndarray, P: int, S: int) -> np.ndarray:
    """``sum_abc p3[a, b, c] F[spec_f] G[spec_g]`` over the batch indices a, b, c, in O(M^2) instead of M^3.

    The law of three examples' batch indices (:func:`_pair_law`) is ``S (S^2 - S (d_ab + d_ac + d_bc) + 2 d_abc) / (P (P-1) (P-2))``, so the
    sum is five einsums in which the Kronecker deltas merge batch letters.
    """
    def merged(rename: dict[str, str]) -> np.ndarray:
        table = str.maketrans(rename)
        return np.einsum(f"{spec_f.translate(table)},{spec_g.translate(table)}->{out}", F, G, optimize=True)

    total = (S * S * merged({}) - S * (merged({"b": "a"}) + merged({"c": "a"}) + merged({"c": "b"}))
             + 2 * merged({"b": "a", "c": "a"}))
    return S * total / (P * (P - 1) * (P - 2))



def _triple_marginal(omega: np.ndarray, P: int, S: int) -> np.ndarray:
    """``sum_bc p3[a, b, c] omega[..., b, c]`` (..., M) in O(M^2): the deltas of p3 (:func:`_pair_law`) give
    the total, the row a, the column a, the trace and the diagonal entry a."""
    total = omega.sum((-2, -1))[..., None]
    trace = np.trace(omega, axis1=-2, axis2=-1)[..., None]
    diagonal = np.diagonal(omega, axis1=-2, axis2=-1)
    inner = S * S * total - S * (omega.sum(-1) + omega.sum(-2) + trace) + 2 * diagonal
    return S * inner / (P * (P - 1) * (P - 2))


def pattern_coefficients(omega: np.ndarray, P: int, S: int, blocks: bool = False) -> dict[str, np.ndarray]:
    """Coefficients of Cov(b_h^omega) on the surviving sums, per pair of source directions (docs/theory.md §3h).

    ``omega`` (K, M, M): ``omega_k[a, b]`` the weight of a pair (mu used in batch a, nu in batch
    b) when w_nu acts through direction k (zero unless a > b).  ``b_h,i = (1/S^2) sum_{mu != nu}
    sum_k h_mu,ik w_nu,k omega_k(t_mu, t_nu)``.  Index slots (0, 1, 2, 3) = (mu, nu, mu', nu')
    of ``h_mu w_nu w_nu'^T h_mu'``; every coincidence pattern pi has the expectation
    ``E_pi[k, l]`` over the batch indices of distinct examples; Moebius inversion on the
    partition lattice leaves only the unrestricted sums without a lone index (``sum h = sum w =
    0``): A = {mu nu}{mu' nu'}, B = {mu mu'}{nu nu'}, C = {mu nu'}{nu mu'} and the all-equal
    one, "1", each with the (K, K) coefficient ``sum_{pi <= sigma} E_pi mu(pi, sigma)``
    (symmetrised: the sums are symmetric under k <-> l).  ``q[k] = E[omega_k]``; A is centred.
    Cost K^2 M^2 (the 3-example law's deltas merge batch indices, :func:`_triple_sum`).  ``blocks``: ``omega`` (n, 2, M, M), two
    weights per target direction (the components of the kick), and only the (n, 2, 2) blocks
    of each direction with itself are formed (cost n M^2).
    """
    L, R, O = ("ix", "iy", "ixy") if blocks else ("k", "l", "kl")
    p2 = _pair_law(P, S)
    q = np.einsum(f"ab,{L}ab->{L}", p2, omega)
    row, col = omega.sum(-1), omega.sum(-2)
    inner = (S * S * omega.sum((-2, -1))[..., None, None]
             - S * (row[..., :, None] + row[..., None, :] + col[..., :, None] + col[..., None, :])
             + omega + omega.swapaxes(-1, -2))
    letters = "abcd"
    expectations = []
    for pi in _partitions([0, 1, 2, 3]):
        block = {e: i for i, b in enumerate(pi) for e in b}
        if block[0] == block[1] or block[2] == block[3]:
            continue
        s01 = letters[block[0]] + letters[block[1]]
        s23 = letters[block[2]] + letters[block[3]]
        if len(pi) == 4:
            value = np.einsum(f"ab,{L}ab,{R}ab->{O}", p2, omega, inner) / ((P - 2) * (P - 3))
        elif len(pi) == 3:
            value = _triple_sum(f"{L}{s01}", f"{R}{s23}", O, omega, omega, P, S)
        else:
            value = np.einsum(f"ab,{L}{s01},{R}{s23}->{O}", p2, omega, omega)
        expectations.append((pi, value))
    targets = {"A": [[0, 1], [2, 3]], "B": [[0, 2], [1, 3]], "C": [[0, 3], [1, 2]], "1": [[0, 1, 2, 3]]}
    out = {"q": q}
    for name, sigma in targets.items():
        total = sum(v * m for pi, v in expectations if (m := _moebius(pi, sigma)) is not None)
        out[name] = (total + total.swapaxes(-1, -2)) / 2
    out["A"] = out["A"] - q[..., :, None] * q[..., None, :]
    return out


def _beta_weights(M: int, momentum: float) -> np.ndarray:
    """``omega[a, b] = (1 - beta^(a - b)) 1{a > b}``, (1, M, M): the displacement arrived, no Hessian."""
    lag = np.arange(M)[:, None] - np.arange(M)[None, :]
    return np.where(lag > 0, 1.0 - momentum ** np.maximum(lag, 0), 0.0)[None]


def pair_weight_coefficients(P: int, S: int, momentum: float) -> dict[str, float]:
    """Scalar coefficients of Cov(b_h^omega) on U_1, u u^T, U_B, U_C (docs/theory.md §3h, "With momentum").

    :func:`pattern_coefficients` with the direction-independent weight
    ``omega_{mu nu} = (1 - beta^(t_mu - t_nu)) 1{t_mu > t_nu}``; for beta = 0 these are §3h's
    ``g_1, f_4 - q^2, g_B, g_C`` and ``q``.
    """
    co = pattern_coefficients(_beta_weights(P // S, momentum), P, S)
    return {k: float(np.ravel(v)[0]) for k, v in co.items()}


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


def _lag_weights(pw: np.ndarray, momentum: float, M: int) -> np.ndarray:
    """``omega_k[a, b] = (1 - beta) (A_k^(a-1-b) e_1)_0`` for a > b (0 otherwise), (n, M, M).

    The displacement of direction k at batch a caused by the gradient of batch b, in units of
    ``-eta g / (1 - beta)``, under the full-batch propagator; ``1 - beta^(a-b)`` when lam_k = 0.
    """
    lag = np.arange(M)[:, None] - np.arange(M)[None, :]
    pre = (1 - momentum) * pw[:M, :, 0, 0]  # (M, n): (A^l e_1)_0, l = 0..M-1
    return np.where((lag > 0)[None], pre[np.maximum(lag - 1, 0)].transpose(2, 0, 1), 0.0)


def _var_h_diag(Z: np.ndarray, r: np.ndarray, lam: np.ndarray, co: dict) -> np.ndarray:
    """``S^4 Var(b_h,i)`` from the (n, n) pattern coefficients of :func:`pattern_coefficients`.

    ``a_ik = sum_mu h_mu,ik w_mu,k = (Z^T diag(r) Z o Z)_ik``; A: ``(a co_A a^T)_ii``; B and "1":
    ``sum_mu (h_mu M_mu h_mu)_ii`` with ``M = co_B o C_w`` and ``M_mu = co_1 o w_mu w_mu^T``; C:
    ``sum_{mu nu} r_mu r_nu z_mu,i z_nu,i (z_mu o z_nu)^T co_C (z_mu o z_nu)`` (the lam parts of h
    vanish there because ``Z^T r = 0``).  Cost P^2 N^2 (the C sum).
    """
    P = Z.shape[0]
    Z2, r2 = Z * Z, r * r
    w = Z * r[:, None]
    amat = Z.T @ (r[:, None] * Z2)
    var_a = np.einsum("ik,kl,il->i", amat, co["A"], amat)
    Mb = co["B"] * (w.T @ w)
    s = np.sum((Z @ Mb) * Z, axis=1)
    var_b = Z2.T @ s - 2 * lam * np.einsum("pi,pi->i", Z, Z @ Mb) + P * lam ** 2 * np.diag(Mb)
    c1 = co["1"]
    s1 = r2 * np.sum((Z2 @ c1) * Z2, axis=1)
    var_1 = (Z2.T @ s1 - 2 * lam * np.sum(r2[:, None] * Z2 * (Z2 @ c1), axis=0)
             + lam ** 2 * np.diag(c1) * (r2 @ Z2))
    Y = Z[:, None, :] * Z[None, :, :]
    Q = np.einsum("pqk,kl,pql->pq", Y, co["C"], Y, optimize=True)
    var_c = np.sum(((np.outer(r, r) * Q) @ Z) * Z, axis=0)
    return var_a + var_b + var_1 + var_c


def _source_sums(W: np.ndarray, Z: np.ndarray, lam: np.ndarray) -> dict[str, np.ndarray]:
    """Diagonals of the surviving sums for per-example sources ``W`` (P, n) with ``sum_mu W_mu = 0``.

    ``a_mu = h_mu w_mu``, ``u = sum a``, ``C = W^T W``: U_1 = sum a a^T, u u^T, U_B = sum h C h
    (``Z2^T diag(z^T C z) - P lam^2 C_ii``), U_C = ``Z^T (G' o G'^T) Z`` with ``G' = Z W^T`` (the
    lam parts vanish by the sum rule), ``cw = diag C`` and ``wa = sum_mu w_mu,i a_mu,i``.
    """
    P = Z.shape[0]
    a = Z * np.sum(Z * W, axis=1)[:, None] - W * lam
    C = W.T @ W
    Gp = Z @ W.T
    return {"1": np.sum(a * a, axis=0), "A": a.sum(axis=0) ** 2,
            "B": (Z * Z).T @ np.sum((Z @ C) * Z, axis=1) - P * lam ** 2 * np.diag(C),
            "C": np.sum(((Gp * Gp.T) @ Z) * Z, axis=0), "cw": np.diag(C), "wa": np.sum(W * a, axis=0)}
