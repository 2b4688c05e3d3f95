"""Compact usage-correlation closure for epoch-based SGD on linear regression (docs/theory.md §3k).

The closure of §3g (:mod:`sgdnoise.theory.epoch_closure`) carries, for every example, the whole
usage-correlated moment ``D_mu = E[(n_mu - p) x~ x~^T]`` ((2N+1)^2 numbers each) and a coupling
``T(D_mu)`` that costs ~2 P^2 N^2 flops per step.  Here every ``D_mu`` is represented by one
matrix ``W`` common to all examples (the *Hadamard ansatz*):

    D_mu = g_mu o W,   g_mu = zeta_mu zeta_mu^T - mean_nu zeta_nu zeta_nu^T,   zeta_mu = (z_mu, z_mu, r_mu),

(``o`` the elementwise product; the sum rule ``sum_mu D_mu = 0`` holds by construction).  The
full-batch propagation ``w A D A^T`` keeps this form exactly (A mixes only the two copies of
one eigendirection, which carry the same factor z_mu,i); every other term of the §3g D-step is
replaced by its least-squares projection onto the ansatz, entry by entry:

    Pi(X)_ab = sum_mu g_mu,ab X_mu,ab / sum_mu g_mu,ab^2,

which for the rank-one kick terms is one GEMM of P x N x N.  ``T(D_mu)`` keeps its self term
``z_mu z_mu^T (rho_mu^T D_mu rho_mu)`` exactly; the sum over the other examples is replaced by its
Gaussian (Wick) value ``(P - 1)[2 lam lam^T o D + lam_a delta_ab (lam . diag D + <r^2> D_cc)]``
(docs/theory.md §3k).  The moment ``m`` itself is stepped exactly as in §3g (same code).

Memory O(N^2 + P N); time per step about 11 GEMMs of P x N x N (no P^2 N^2 term).
"""
from __future__ import annotations

import numpy as np

from sgdnoise.theory.epoch_closure import ClosureEpoch, epoch_problem, solve_closure
from sgdnoise.theory.epoch_weights import step_weights
from sgdnoise.theory.epoch_exact import EpochMoments
from sgdnoise.theory.epoch_start import start_corrected_moments


class CompactEpoch(ClosureEpoch):
    """One epoch of the compact closure: ``m`` (D, D) and ``W`` (D, D), D = 2n + 1 (docs/theory.md §3k).

    Inherits the exact m-step of :class:`ClosureEpoch` (``_m_step``), which needs of the ``D_mu``
    only ``u_mu = D_mu rho_mu``; the stack of ``D_mu`` is never formed.
    """

    def __init__(self, Z: np.ndarray, r: np.ndarray, lam: np.ndarray, lr: float, momentum: float,
                 S: int) -> None:
        rho = self._setup(Z, r, lam, lr, momentum, S)  # not ClosureEpoch.__init__: no packed z z^T (P N^2 / 2)
        P, n = Z.shape
        self.Z, self.rho, self.lh, self.r = Z, rho, self.lam, r
        self.lam2 = np.outer(self.lh, self.lh)
        self.sig2 = float(np.mean(r ** 2))
        self.zeta = np.concatenate([Z, Z, r[:, None]], axis=1)  # (P, D)
        self.gbar = self._gbar()
        self.Z2 = Z * Z
        g2 = self.zeta ** 2
        norm = g2.T @ g2 - P * self.gbar ** 2  # sum_mu g_mu,ab^2
        self.inv_norm = np.divide(1.0, norm, out=np.zeros_like(norm), where=norm > 1e-14 * norm.max())
        gd = self.Z2 - lam  # g_mu,aa for a in the delta_k block
        self.gam = gd.T @ gd  # (n, n): sum_mu g_mu,aa g_mu,cc
        self.gam_r = gd.T @ (r ** 2 - self.sig2)  # (n,): sum_mu g_mu,aa g_mu,(const,const)

    def _gbar(self) -> np.ndarray:
        """``mean_mu zeta_mu zeta_mu^T``: lam on the 2 x 2 block of each direction, <r^2> at (const, const)."""
        n = self.n
        out = np.zeros((self.D, self.D))
        i = np.arange(n)
        for a in (i, i + n):
            for b in (i, i + n):
                out[a, b] = self.lh
        out[-1, -1] = self.sig2
        return out

    def apply_d(self, W: np.ndarray) -> np.ndarray:
        """``u_mu = D_mu rho_mu = zeta_mu o (W (zeta_mu o rho_mu)) - (gbar o W) rho_mu`` for every mu, (P, D).

        ``zeta_mu o rho_mu = (z_mu^2, 0, r_mu^2)``; ``gbar o W`` is block diagonal (lam_i on direction
        i's 2 x 2 block, <r^2> at the corner).
        """
        n = self.n
        out = self.Z2 @ W[:n]
        out += np.outer(self.r ** 2, W[-1])
        out *= self.zeta
        out[:, :n] -= self.Z * (self.lh * np.diagonal(W[:n, :n]))
        out[:, n:2 * n] -= self.Z * (self.lh * np.diagonal(W[n:2 * n, :n]))
        out[:, -1] -= self.r * (self.sig2 * W[-1, -1])
        return out

    def project_outer(self, left: np.ndarray) -> np.ndarray:
        """Numerator of ``Pi(left_mu z_mu^T)``: ``sum_mu g_mu,ab left_mu,a z_mu,b`` for k rows, n columns.

        ``g = zeta zeta^T - gbar``; gbar lives on each direction's own 2 x 2 block (rows a < 2n,
        column a mod n), so its part is one sum over examples per row.
        """
        k, n = left.shape[1], self.n
        num = (self.zeta[:, :k] * left).T @ self.Z2
        i = np.arange(n)
        for first in range(0, min(k, 2 * n), n):  # the delta_k rows, then the delta_{k-1} rows
            num[first + i, i] -= self.lh * np.einsum("pa,pa->a", left[:, first:first + n], self.Z)
        return num

    def _kick_parts(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``s_mu = rho_mu . u_mu = z_mu . (u_mu)_delta + r_mu (u_mu)_c`` and ``g_mu = lam o (u_mu)_delta``."""
        n = self.n
        return np.einsum("pa,pa->p", self.Z, u[:, :n]) + self.r * u[:, -1], u[:, :n] * self.lh

    def _w_step(self, co: dict, um: np.ndarray, u: np.ndarray, uZ: np.ndarray, W: np.ndarray,
                zero: bool) -> np.ndarray:
        """``W`` after the step: ``w A W A^T - c (A F e^T + h.c.) + c^2 e G e^T`` with F, G projected (§3k)."""
        n, c, P, lam = self.n, self.c, self.P, self.lh
        inv = self.inv_norm
        q = co["f1"] * um + co["f2"] * u  # (P, D)
        F = self.project_outer(q) * inv[:, :n] - co["f2"] * W[:, :n] * lam  # (D, n)
        sm, gmv = self._kick_parts(um)
        sd, gdv = self._kick_parts(u)
        k = self.rho_times(uZ)  # (P, n): rho_mu^T sum_nu D_nu K_nu^T (sum_nu D_nu = 0)
        b = -(co["gm"] * gmv + co["gd"] * gdv) + co["gs"] * k
        gT = 0.0 if zero else co["gT"]
        coef = co["gm"] * sm + (co["gd"] + gT) * sd  # T's self term z z^T (rho . D rho) included
        left = self.Z2 * coef[:, None]
        left += 2 * self.Z * b  # Pi(b z^T + z b^T) as 2 Pi(b z^T): the 11 block is symmetrised at the end
        G = left.T @ self.Z2  # one GEMM for sum_mu g_mu o (s_mu z z^T + 2 b_mu z^T), less gbar below
        G[np.diag_indices(n)] -= lam * left.sum(0)
        G *= inv[:n, :n]
        # Hadamard-exact terms; T over the other examples by Wick: (P - 1)(2 lam lam o D + lam_a delta_ab t_mu)
        G += (co["gd"] - P * gT + 2 * (P - 1) * gT) * self.lam2 * W[:n, :n]
        if gT:
            t = self.gam @ (lam * np.diag(W)[:n]) + self.sig2 * self.gam_r * W[-1, -1]
            G[np.diag_indices(n)] += (P - 1) * gT * lam * t * np.diag(inv)[:n]
        out = self.A_sandwich(W)
        out *= co["w"]
        AF = self.A_left(c * F)
        out[:, :n] -= AF
        out[:n, :] -= AF.T
        out[:n, :n] += (c * c) * G
        return self._symmetric(out)

    def step(self, j: int, m: np.ndarray, W: np.ndarray | None, need_d: bool = True):
        """Moments after step j + 1 from those after j; ``W=None`` means all D_mu = 0 (epoch start)."""
        co = step_weights(self.P, self.S, j)
        zero = W is None
        if zero:
            W = np.zeros((self.D, self.D))
        um = self.m_rho(m)
        u = self.apply_d(W)
        uZ = self.u_z(u)
        m_new = self._m_step(co, m, um, u, uZ)
        return m_new, (self._w_step(co, um, u, uZ, W, zero) if need_d else None)

    def m_rho(self, m: np.ndarray) -> np.ndarray:
        """``m rho_mu`` for every example, (P, D)."""
        return self.rho_times(m)

    def rho_times(self, Q: np.ndarray) -> np.ndarray:
        """``rho_mu^T Q = z_mu^T Q_(delta_k, .) + r_mu Q_(c, .)`` for every example (rho_mu's zeros skipped)."""
        return self.Z @ Q[:self.n] + np.outer(self.r, Q[-1])

    def u_z(self, u: np.ndarray) -> np.ndarray:
        """``sum_mu u_mu z_mu^T`` (D, n), shared by the m-step and the k term of the W-step."""
        return u.T @ self.Z


class BlockCompactEpoch(CompactEpoch):
    """The compact closure with ``m`` kept block diagonal by eigendirection (docs/theory.md §3k).

    Only the 2 x 2 block of each direction and the mean column of ``m`` are carried (the
    couplings between directions are dropped after every step), so the m-step is O(P N) and
    ``m rho_mu`` elementwise; ``W`` stays full.
    """

    def __init__(self, *args) -> None:
        super().__init__(*args)
        n = self.n
        self.rows = np.arange(2 * n)
        self.dirs = self.rows % n
        d = np.r_[self.dirs, -1]
        self.mask = (d[:, None] == d[None, :]) | (d[:, None] < 0) | (d[None, :] < 0)

    def m_rho(self, m: np.ndarray) -> np.ndarray:
        um = np.empty((self.P, self.D))
        um[:, :-1] = self.Z[:, self.dirs] * m[self.rows, self.dirs] + np.outer(self.r, m[:-1, -1])
        um[:, -1] = self.Z @ m[-1, :self.n] + self.r * m[-1, -1]
        return um

    def u_z(self, u: np.ndarray) -> np.ndarray:
        """The rows of ``sum_mu u_mu z_mu^T`` the W-step uses (delta_k and the constant); the m-step needs none."""
        out = np.zeros((self.D, self.n))
        out[:self.n] = u[:, :self.n].T @ self.Z
        out[-1] = u[:, -1] @ self.Z
        return out

    def _m_step(self, co: dict, m: np.ndarray, um: np.ndarray, u: np.ndarray, uZ: np.ndarray) -> np.ndarray:
        """§3g's m-step on the direction blocks: only the diagonal of the kick sandwiches is formed."""
        n, c, rows, dirs = self.n, self.c, self.rows, self.dirs
        sm, _ = self._kick_parts(um)
        sd, gd = self._kick_parts(u)
        tm = self.Z2.T @ sm - self.P * self.lh ** 2 * m[np.arange(n), np.arange(n)]
        kdk = self.Z2.T @ sd - 2 * np.einsum("pi,pi->i", self.Z, gd)
        egg = co["alpha"] * tm + co["gamma"] * kdk
        ex = np.zeros((self.D, n))
        ex[rows, dirs] = np.einsum("pa,pa->a", u[:, rows], self.Z[:, dirs])
        ex[-1] = u[:, -1] @ self.Z
        aex = self.A_left(-c * co["sr"] * ex)
        out = self.A_sandwich(m)
        out[:, :n] -= aex
        out[:n, :] -= aex.T
        out[np.arange(n), np.arange(n)] += c * c * egg
        return self._symmetric(out) * self.mask


def compact_closure_moments(X, y, lr: float, batch_size: int, momentum: float = 0.0,
                            rtol: float = 1e-6, block_diagonal: bool = False,
                            start_correction: bool = False) -> EpochMoments:
    """Stationary moments of epoch SGD on linear regression by the compact closure (docs/theory.md §3k).

    Same conventions and return type as :func:`sgdnoise.theory.epoch_exact.epoch_exact_moments`
    (time averages over the M positions, ``var_theta`` per ascending eigendirection).  The
    §3g closure with ``D_mu = g_mu o W`` (module notes): exact for additive noise and for the
    first step of an epoch, like §3g.  The epoch map is affine in the epoch-start moment
    (W restarts at 0), solved by GMRES (relative tolerance ``rtol`` of the residual; 1e-6 keeps every
    direction's Var theta within ~1e-5 of the converged value, 1e-5 left up to 1e-2 in the flattest
    directions of isotropic problems, docs/theory.md §3k *Cost*), one epoch pass per
    iteration, preconditioned with the exact inverse of the full-batch epoch map
    (:func:`sgdnoise.theory.epoch_closure.solve_epoch_map`).
    Memory O(N^2 + P N); time per pass M steps of about 11 P x N x N GEMMs' worth of work (7 with block_diagonal).
    ``block_diagonal``: keep m block diagonal by eigendirection (:class:`BlockCompactEpoch`;
    about half the cost, an approximation measured in docs/theory.md §3k).
    ``start_correction``: replace the epoch-start variance of the directions that do not relax
    within an epoch by §3h's (:func:`sgdnoise.theory.epoch_start.start_corrected_moments`;
    off by default, measured in docs/theory.md §3h, "With momentum").  Applied only where
    ``batch_size`` divides P (:func:`start_correction_applies`): §3h's kick is the second-order one
    of an epoch that uses every example once; when P - M S examples are dropped per epoch their
    first-order kick dominates, and the closure alone holds it (docs/theory.md §3h, *Dropped examples*).
    """
    pb = epoch_problem(X, y, lr, batch_size, momentum)
    epoch_class = BlockCompactEpoch if block_diagonal else CompactEpoch
    moments = solve_closure(epoch_class(pb.Z, pb.r, pb.lam, float(lr), float(momentum), int(batch_size)), pb, lr,
                            momentum, rtol)
    if start_correction and start_correction_applies(pb.X.shape[0], int(batch_size)):
        moments = start_corrected_moments(pb.Z, pb.r, pb.lam, pb.V, moments, float(lr), int(batch_size),
                                          float(momentum))
    return moments



def start_correction_applies(P: int, batch_size: int) -> bool:
    """Whether §3h's epoch-start correction is made: every example used once per epoch (S divides P)."""
    return P % batch_size == 0


#: Seconds per multiply-add of a P x N x N GEMM, elementwise work included, two idle cores
#: (a step at N = 500, P = 1000, S = 10 takes about 105 ms: 11 GEMMs' worth; docs/theory.md §3k).
SECONDS_PER_UNIT = 3.8e-11
#: GEMMs' worth of work per step (docs/theory.md §3k, "Cost") and epoch passes per solve (5-6 measured).
GEMMS_PER_STEP, PASSES = 11, 7


def compact_cost(P: int, N: int, batch_size: int) -> tuple[float, float]:
    """Estimated (seconds, bytes) of :func:`compact_closure_moments` on two idle cores.

    Seconds: ``PASSES`` epochs of M = P // S steps of ``GEMMS_PER_STEP`` P N^2 multiply-adds; bytes:
    per pass its start, end and position sums and a GMRES vector (five D x D moments), and a few
    P x N arrays.
    """
    M = P // batch_size
    seconds = PASSES * M * GEMMS_PER_STEP * float(P) * float(N) ** 2 * SECONDS_PER_UNIT
    return seconds, 8.0 * (5 * PASSES * (2 * N + 1) ** 2 + 8 * P * N)
