"""Dense reference of the usage-correlation closure (docs/theory.md §3g), for tests only.

The first, literal implementation of the closure, kept to check that the fast one in
``sgdnoise.theory.epoch_closure`` gives the same numbers to round-off.

Tracks, besides the augmented second moment ``m = E[x~ x~^T]`` (``x~ = (delta_k, delta_{k-1}, 1)``),
the correlation of the whole augmented moment with the usage indicator of every example,
``D_mu = E[(n_mu - p) x~ x~^T]`` (its last column is ``c_mu = E[(n_mu - p) x]``).  Conditioned
on the used set U every quantity of the next step is an exact polynomial in the indicators;
the one approximation is the *linear closure*

    E[x~ x~^T | U] ~= m + alpha sum_sigma (n_sigma - p) D_sigma,   alpha = (P - 1) / (P p (1 - p)),

the best predictor affine in the indicators (it reproduces m and every D_mu exactly, and keeps
the sum rules sum_mu (n_mu - p) = 0, sum_mu D_mu = 0).  The expectations over U are then
hypergeometric moments of the indicators (up to third order; the fourth-order term, of order
b_R c^2 D, is dropped).  Exact for additive noise (the D_mu enter only through K D K sandwiches
whose additive part is zero).  Cost: P^2 (2N)^2 N per step -- a reference for P up to ~50.
"""
from __future__ import annotations

import numpy as np
from scipy.sparse.linalg import LinearOperator, gmres

from sgdnoise.theory.epoch_exact import _gradient_descent_inverse, _moments
from sgdnoise.theory.exact import _eigenbasis
from sgdnoise._spec import check_stable


def _hyper(P, k):
    """Central moments of the indicators of a uniform k-subset of P: (v2, C2_ab, t_aab - t_abc, t3, p)."""
    p = k / P
    pi2 = k * (k - 1) / (P * (P - 1))
    pi3 = k * (k - 1) * (k - 2) / (P * (P - 1) * (P - 2)) if P > 2 else 0.0
    c2aa = p * (1 - p)
    c2ab = pi2 - p * p
    c3aaa = p * (1 - p) * (1 - 2 * p)
    c3aab = (1 - 2 * p) * c2ab
    c3abc = pi3 - 3 * p * pi2 + 2 * p ** 3
    return {"p": p, "v2": c2aa - c2ab, "c2ab": c2ab, "c2aa": c2aa, "t1": c3aab - c3abc,
            "t3": c3aaa - 3 * c3aab + 2 * c3abc}


class ClosureEpoch:
    def __init__(self, Z, r, lam, lr, momentum, S, drop4=True, order2=True):
        P, n = Z.shape
        self.P, self.n, self.S, self.c = P, n, S, lr / S
        self.M = P // S
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
        aR = S * (R - S) / (R * (R - 1)) if R > 1 else 0.0
        bR = S * (S - 1) / (R * (R - 1)) if R > 1 else 0.0
        w = 1 - S / R
        q = (S - 1) / (R - 1) if R > 1 else 0.0
        if R == S:
            a1, b1 = 0.0, 1.0 if S > 1 else 0.0
        else:
            a1 = (S - 1) * (R - S) / ((R - 1) * (R - 2))
            b1 = (S - 1) * (S - 2) / ((R - 1) * (R - 2))
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

    def epoch(self, m0, record=False):
        m = m0
        Dm = np.zeros((self.P, self.D, self.D))
        pos = [m0]
        for j in range(self.M):
            m, Dm = self.step(j, m, Dm)
            if record and j + 1 < self.M:
                pos.append(m)
        return m, pos


def dense_closure_moments(X, y, lr, batch_size, momentum=0.0):
    """Stationary moments of epoch SGD on linear regression by the usage-correlation closure.

    Same conventions and return type as :func:`sgdnoise.theory.epoch_exact.epoch_exact_moments`
    (time averages over the M positions, ``var_theta`` per ascending eigendirection).  Exact
    for additive noise and for the first step of an epoch; otherwise the linear closure in
    the indicators (module notes).  Dense: memory P (2N+1)^2, time P^2 N^2 per step, so a
    method for P * N up to a few 10^4 (demo size: about 40 s per epoch pass).
    """
    X = np.asarray(X, float)
    y = np.asarray(y, float)
    P = X.shape[0]
    S = int(batch_size)
    M = P // S
    Y = y.reshape(P, 1)
    basis = _eigenbasis(X, Y)
    lam_all, V_all = np.linalg.eigh(X.T @ X / P)
    order = np.argsort(basis.lam)
    Z, V, lam = basis.Z[:, order], basis.V[:, order], basis.lam[order]
    check_stable(lr, lam.max(), momentum)
    r = (Z @ basis.w[order] - Y)[:, 0]
    ep = ClosureEpoch(Z, r, lam, float(lr), float(momentum), S)
    D = ep.D
    corner = np.zeros((D, D)); corner[-1, -1] = 1.0
    rhs = ep.epoch(corner)[0] - corner
    rhs[-1, -1] = 0.0

    def apply(v):
        mm = v.reshape(D, D)
        out = mm - ep.epoch((mm + mm.T) / 2 + corner)[0] + ep.epoch(corner)[0]
        return out.ravel()

    op = LinearOperator((D * D, D * D), matvec=apply, dtype=float)
    pre = LinearOperator((D * D, D * D), matvec=_gradient_descent_inverse(lam * lr, float(momentum), M), dtype=float)
    sol, _ = gmres(op, rhs.ravel(), rtol=1e-11, atol=0.0, restart=60, maxiter=4, M=pre)
    m0 = corner + sol.reshape(D, D)
    m0 = (m0 + m0.T) / 2
    end, pos = ep.epoch(m0, record=True)
    ch = end - m0; ch[-1, -1] = 0
    res = float(np.linalg.norm(ch) / np.linalg.norm(m0 - corner))
    return _moments(np.array(pos), V, lam_all, V_all, lam.size, M, res)
