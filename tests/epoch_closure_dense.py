"""Dense reference of the usage-correlation closure (docs/theory.md §3g), for tests only.

The first, literal implementation: every D_mu a full (2N+1)^2 matrix, every kick sandwich
formed explicitly (memory P (2N+1)^2, time P^2 N^3 per step).  Kept to check that the
structured one in ``sgdnoise.theory.epoch_closure`` gives the same numbers to round-off.
"""
from __future__ import annotations

import numpy as np

from sgdnoise.theory.epoch_closure import closure_moments
from sgdnoise.theory.epoch_weights import _hyper, batch_law


class ClosureEpoch:
    def __init__(self, Z, r, lam, lr, momentum, S, drop4=True, order2=True):
        P, n = Z.shape
        self.P, self.n, self.S, self.c = P, n, S, lr / S
        self.M, self.lam = P // S, np.asarray(lam, float)
        D = 2 * n + 1
        self.D = D
        A = np.zeros((D, D))
        A[:n, :n] = np.diag(1 + momentum - lr * lam)
        A[:n, n:2 * n] = -momentum * np.eye(n)
        A[n:2 * n, :n] = np.eye(n)
        A[-1, -1] = 1.0
        self.A = A
        self.a11, self.beta = 1 + momentum - lr * lam, momentum
        rho = np.zeros((P, D))
        rho[:, :n] = Z
        rho[:, -1] = r
        Lh = np.zeros((n, D))
        Lh[:, :n] = np.diag(lam)
        self.set_kicks(Z, rho, Lh)

    def Aleft(self, Qs):
        """A Q for a stack (P, D, k): A is [[a11, -beta, 0], [I, 0, 0], [0, 0, 1]] blockwise."""
        n = self.n
        out = np.empty_like(Qs)
        out[:, :n] = self.a11[:, None] * Qs[:, :n] - self.beta * Qs[:, n:2 * n]
        out[:, n:2 * n] = Qs[:, :n]
        out[:, 2 * n:] = Qs[:, 2 * n:]
        return out

    def set_kicks(self, Z, rho, Lh):
        """Per-example kick ``K_mu x~ = z_mu (rho_mu . x~) - Lh x~`` (``sum_mu K_mu = 0`` for the data)."""
        self.Z, self.rho, self.Lh = Z, rho, Lh
        self.Srz = rho.T @ Z  # (D, n): sum_mu rho_mu z_mu^T
        self.nz = np.flatnonzero(np.any(rho != 0, axis=0))  # columns rho uses (delta and the constant)

    def Kright(self, Qs):
        """Q_mu K_mu^T for a stack (P, D, D) or one Q (D, D) -> (P, D, n)."""
        if Qs.ndim == 2:
            return (Qs @ self.rho.T).T[:, :, None] * self.Z[:, None, :] - (Qs @ self.Lh.T)[None]
        return np.einsum("pde,pe->pd", Qs, self.rho)[:, :, None] * self.Z[:, None, :] - Qs @ self.Lh.T

    def Kleft(self, Xs):
        """K_mu X_mu for a stack (P, D, n) -> (P, n, n)."""
        return self.Z[:, :, None] * np.einsum("pd,pdn->pn", self.rho, Xs)[:, None, :] - np.matmul(self.Lh, Xs)

    def T(self, Q):
        """sum_nu K_nu Q K_nu^T for Q (D, D) -> (n, n)."""
        Z, rho, Lh = self.Z, self.rho, self.Lh
        s = np.einsum("pd,pd->p", rho @ Q, rho)
        return ((Z.T * s) @ Z - self.Srz.T @ Q @ Lh.T - Lh @ Q @ self.Srz
                + self.P * Lh @ Q @ Lh.T)

    def Tmany(self, Qs):
        """T(Q_mu) for a stack (P, D, D) -> (P, n, n)."""
        Z, rho, Lh = self.Z, self.rho, self.Lh
        nz = self.nz
        rz = rho[:, nz]
        Qr = np.matmul(Qs[:, nz][:, :, nz], rz.T)  # (m, d, P): Q_m rho_nu on the used columns
        s = np.einsum("nd,mdn->mn", rz, Qr)
        out = np.einsum("na,mn,nb->mab", Z, s, Z, optimize=True)
        out -= np.matmul(np.matmul(self.Srz.T, Qs), Lh.T)
        out -= np.matmul(np.matmul(Lh, Qs), self.Srz)
        out += self.P * np.matmul(np.matmul(Lh, Qs), Lh.T)
        return out

    def step(self, j, m, Dm):
        P, S, n, c, A = self.P, self.S, self.n, self.c, self.A
        R = P - j * S
        h = _hyper(P, j * S)
        p, v2 = h["p"], h["v2"]
        al = 1.0 / v2 if v2 > 0 else 0.0
        aR, bR, w, q, a1, b1 = batch_law(R, S)
        e = lambda Mn: np.pad(Mn, ((0, self.D - n), (0, 0)))  # (n, .) -> (D, .)

        def ee(Q):  # (n, n) -> (D, D)
            out = np.zeros((self.D, self.D)); out[:n, :n] = Q; return out
        mK = self.Kright(m)  # m K_mu^T  (P, D, n)
        DK = self.Kright(Dm)  # D_mu K_mu^T
        sDK = DK.sum(0)  # (D, n)
        KDK = self.Kleft(DK)  # K_mu D_mu K_mu^T (P, n, n)
        sKDK = KDK.sum(0)
        KmK = self.Kleft(mK)
        Tm = KmK.sum(0)
        TD = self.Tmany(Dm)  # (P, n, n)
        # --- X recursion
        ExG = -(S / R) * sDK
        EGG = aR * ((1 - p) * Tm - sKDK) + bR * (v2 * Tm + al * h["t3"] * sKDK)
        AEx = A @ ExG
        m_new = A @ m @ A.T - c * (e(AEx.T).T + e(AEx.T)) + c * c * ee(EGG)
        # --- D recursion
        # (3) E[eps_mu x G^T]
        EexG = -(S / R) * (v2 * mK + al * h["t1"] * sDK[None] + al * h["t3"] * DK)  # (P, D, n)
        # (4) E[eps_mu G G^T]
        t_aux = (1 - p) * TD - (h["c2ab"] * Tm[None] + (h["c2aa"] - h["c2ab"]) * KmK) \
            - al * (h["t1"] * (TD + sKDK[None]) + h["t3"] * KDK)
        EeGG = aR * t_aux + bR * (h["t1"] * Tm[None] + h["t3"] * KmK)
        # (5) E[x (zeta_mu G)^T]
        EuYK = (1 - p) * sDK[None] - (v2 * mK + al * h["t1"] * sDK[None] + al * h["t3"] * DK)  # sum_nu E[u_mu eps_nu M] K_nu^T
        ExzG = aR * ((1 - p) * mK - DK + EuYK / R)
        # (6) E[zeta_mu G G^T]
        Eee = self.Kleft((1 - p) * mK - DK)  # E[u e_mu e_mu^T]
        EeY = self.Kleft(EuYK)  # E[u e_mu Y^T]
        EuSum = ((1 - p) ** 2 + h["c2ab"]) * Tm[None] - (1 - p) * (TD + sKDK[None]) \
            + (h["c2aa"] - h["c2ab"]) * KmK + al * (h["t1"] * (TD + sKDK[None]) + h["t3"] * KDK)
        EuYY = (1 - p) * (v2 * Tm[None] + al * h["t3"] * sKDK[None]) - (h["t1"] * Tm[None] + h["t3"] * KmK)
        inner = (1 - 2 * q - a1 + b1) * Eee + (b1 - q) * (EeY + EeY.transpose(0, 2, 1)) \
            + (a1 - aR) * EuSum + (b1 - bR) * EuYY
        EzGG = (S / R) * inner
        AD = self.Aleft(self.Aleft(Dm).transpose(0, 2, 1))
        AEe = self.Aleft(EexG)
        AEz = self.Aleft(ExzG)
        Dn = w * AD
        Dn[:, :, :n] -= c * (w * AEe + AEz)
        Dn[:, :n, :] -= c * (w * AEe + AEz).transpose(0, 2, 1)
        Dn[:, :n, :n] += c * c * (w * EeGG + EzGG)
        # exact sum rule sum_mu D_mu = 0 (symmetrise too)
        Dn = (Dn + Dn.transpose(0, 2, 1)) / 2
        Dn -= Dn.mean(0, keepdims=True)
        return (m_new + m_new.T) / 2, Dn

    def epoch(self, m0, visit=None):
        m = m0
        Dm = np.zeros((self.P, self.D, self.D))
        for j in range(self.M):
            if visit is not None:
                visit(m)
            m, Dm = self.step(j, m, Dm)
        return m


def dense_closure_moments(X, y, lr, batch_size, momentum=0.0):
    """:func:`sgdnoise.theory.epoch_closure.closure_moments` with this dense epoch map."""
    return closure_moments(X, y, lr, batch_size, momentum, epoch_class=ClosureEpoch)
