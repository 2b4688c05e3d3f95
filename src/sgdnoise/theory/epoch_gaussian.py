"""The compact closure with Gaussian data moments: O(N^2) per step (docs/theory.md §3l).

The compact closure of §3k (:class:`sgdnoise.theory.epoch_compact.CompactEpoch`) spends each
step on sums over the P examples of polynomials in the example's eigenbasis coordinates z_mu
and residual r_mu, contracted with the state (m, W).  Here every such sum
``sum_mu f(z_mu, r_mu)`` is replaced by ``P E[f]`` with ``z ~ N(0, diag(lam))`` (independent
components, lam the data's eigenvalues) and r independent of z with the data's moments
``E r = 0``, ``sigma2 = <r^2>``, ``kappa = <r^4>`` (odd moments never enter: every term has even
total degree, so odd powers of r come with odd powers of z).  With ``y_a = z_a^2`` and
``l = lam`` the moments used are (docs/theory.md §3l)

    E[y_a y_b]          = l_a l_b (1 + 2 d_ab)
    E[y_a y_b y_c]      = l_a l_b l_c (1 + 2 d_ab + 2 d_ac + 2 d_bc + 8 d_ab d_ac)
    E[y_a y_b y_c y_d]  = l_a l_b l_c l_d sum over set partitions of {a, b, c, d} of the product
                          over blocks B of 2^(|B|-1) (|B|-1)! [all of B equal]

(the number of Wick pairings of the doubled indices that form one cycle per block), and
``E[z_a z_b F] = 0`` for a != b when F is even in every component.  Everything else of the step
(the Hadamard ansatz, the projection, the Wick value of T for the other examples, the weights
of :func:`sgdnoise.theory.epoch_weights.step_weights`) is §3k's, unchanged.

Memory and time per step O(N^2): a few dozen elementwise operations and matrix-vector products
on N x N and (2N+1) x N matrices; no P x N array.
"""
from __future__ import annotations

import numpy as np

from sgdnoise.theory.epoch_closure import ClosureEpoch, EpochProblem, epoch_problem, solve_closure
from sgdnoise.theory.epoch_exact import EpochMoments
from sgdnoise.theory.epoch_weights import step_weights


class GaussianCompactEpoch(ClosureEpoch):
    """One epoch of the compact closure (§3k) with Gaussian data moments (docs/theory.md §3l).

    ``lam`` the eigenvalues of H (ascending), ``sigma2`` and ``kappa`` the second and fourth
    moments of the residuals at the minimum, ``P`` the number of examples, ``S`` the batch size.
    Same state and interface as :class:`sgdnoise.theory.epoch_compact.CompactEpoch`:
    ``step(j, m, W)`` and ``epoch(m0, visit)`` (inherited), m and W of size D = 2n + 1.
    """

    def __init__(self, lam: np.ndarray, sigma2: float, kappa: float, lr: float, momentum: float,
                 S: int, P: int) -> None:
        lam = np.asarray(lam, float)
        n = lam.size
        self.P, self.n, self.S, self.c, self.M, self.D = int(P), n, int(S), lr / S, int(P) // int(S), 2 * n + 1
        self.lam = self.lh = lam
        self.a11, self.beta = 1 + momentum - lr * lam, momentum
        self.lam2 = np.outer(lam, lam)
        self.sig2, self.kappa = float(sigma2), float(kappa)
        self.r4 = self.kappa - self.sig2 ** 2  # E[(r^2 - sigma2)^2]
        eg2 = self._g_square()
        self.inv_norm = np.divide(1.0, self.P * eg2, out=np.zeros_like(eg2), where=eg2 > 1e-14 * eg2.max())
        # constant factors of the step, formed once (contiguous)
        self.f_scale = np.ascontiguousarray(self.P * self.inv_norm[:, :n])  # P / sum_mu g_ab^2 of F's columns
        self.g_scale = np.ascontiguousarray(self.f_scale[:n])
        self.pair = self.lam2 + 2 * np.diag(lam * lam)  # E[y_a y_b] = l_a l_b (1 + 2 d_ab)
        self.two_l_l2 = 2 * np.outer(lam, lam * lam)
        self.eight_lam2 = 8 * self.lam2

    @classmethod
    def of(cls, problem: EpochProblem, lr: float, momentum: float, S: int) -> "GaussianCompactEpoch":
        """The epoch map of a checked problem: its eigenvalues and the residuals' <r^2>, <r^4>."""
        r = problem.r
        return cls(problem.lam, float(np.mean(r ** 2)), float(np.mean(r ** 4)), float(lr), float(momentum), int(S),
                   problem.X.shape[0])

    def _g_square(self) -> np.ndarray:
        """``E[g_ab^2]`` (D, D), g = zeta zeta^T - gbar: ``l_i l_j (1 + d_ij)``, ``l_i sigma2``, ``kappa - sigma2^2``."""
        n, l = self.n, self.lam
        block = self.lam2 + np.diag(l * l)
        out = np.empty((self.D, self.D))
        for a in (slice(0, n), slice(n, 2 * n)):
            for b in (slice(0, n), slice(n, 2 * n)):
                out[a, b] = block
            out[a, -1] = out[-1, a] = l * self.sig2
        out[-1, -1] = self.r4
        return out

    # -- the moments of u_mu = D_mu rho_mu, per example ----------------------------------------
    def _du(self, X: np.ndarray, xc: np.ndarray) -> np.ndarray:
        """``E[y_i h_i] = l_i ((X l)_i + l_i X_ii + sigma2 x_ci)``, h_i = (X y)_i - l_i X_ii + x_ci r^2.

        ``u_mu`` on the rows of one copy (X = W's block against the delta_k columns, x_c its
        constant column) is ``z_i h_i``; ``E[u z^T]`` is ``diag(E[y h])``.
        """
        l = self.lam
        return l * (X @ l + l * np.diagonal(X) + self.sig2 * xc)

    def _q(self, X: np.ndarray, xc: np.ndarray) -> np.ndarray:
        """``E[y_i y_b h_i] = l_i l_b [(1 + 2 d_ib)((X l)_i + s2 x_ci) + l_i X_ii + 2 l_b X_ib + 6 d_ib l_i X_ii]``."""
        l = self.lam
        base = X @ l + self.sig2 * xc
        dX = np.diagonal(X)
        out = X * self.two_l_l2
        out += np.outer(l * (base + l * dX), l)
        out[np.diag_indices(self.n)] += l * l * (2 * base + 6 * l * dX)
        return out

    def _y_sd(self, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``E[y_a s_D]`` (n,) and ``E[y_a y_b s_D]`` (n, n), ``s_D = rho . D rho``.

        ``s_D = y^T W11 y - sum_c l_c W11_cc y_c + 2 r^2 w1c . y + wcc (r^4 - sigma2 r^2)``.
        """
        n, l, s2 = self.n, self.lam, self.sig2
        W11, w, wcc = W[:n, :n], W[:n, -1], W[-1, -1]
        Wl, dW = W11 @ l, np.diagonal(W11)
        s, t2, wl = l @ Wl, (l * l) @ dW, w @ l
        lwl, l2w = l * Wl, l * l * dW
        first = l * (s + t2 + 4 * lwl + 6 * l2w + 2 * s2 * (wl + 2 * l * w) + wcc * self.r4)
        const = s + t2 + 2 * s2 * wl + wcc * self.r4  # the (1 + 2 d_ab) part
        row = 4 * lwl + 6 * l2w + 4 * s2 * l * w  # the part in a alone (and the same in b)
        two = W11 * self.eight_lam2
        two += row[:, None] + const
        two += row[None, :]
        two[np.diag_indices(n)] += 2 * const + 16 * lwl + 40 * l2w + 16 * s2 * l * w
        two *= self.lam2
        return first, two

    def _y_sm(self, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``E[y_a s_m]`` (n,) and ``E[y_a y_b s_m]`` (n, n), ``s_m = rho^T m rho``."""
        n, l = self.n, self.lam
        dm = np.diagonal(m[:n, :n])
        tr = l @ dm + self.sig2 * m[-1, -1]
        first = l * (tr + 2 * l * dm)
        ldm = 2 * l * dm
        two = np.add.outer(ldm + tr, ldm)
        two[np.diag_indices(n)] += 2 * tr + 8 * l * dm
        two *= self.lam2
        return first, two

    # -- the step ----------------------------------------------------------------------------------
    def step(self, j: int, m: np.ndarray, W: np.ndarray | None, need_d: bool = True):
        """Moments after step j + 1 from those after j; ``W=None`` means all D_mu = 0 (epoch start)."""
        co = step_weights(self.P, self.S, j)
        zero = W is None
        if zero:
            W = np.zeros((self.D, self.D))
        n = self.n
        du1 = self._du(W[:n, :n], W[:n, -1])
        du2 = self._du(W[n:2 * n, :n], W[n:2 * n, -1])
        y_sm, y_sd = self._y_sm(m), self._y_sd(W)
        m_new = self._m_step(co, m, du1, du2, y_sm[0], y_sd[0])
        if not need_d:
            return m_new, None
        q11 = self._q(W[:n, :n], W[:n, -1])  # shared by F and G
        return m_new, self._w_step(co, m, W, (du1, du2, q11), y_sm, y_sd, zero)

    def _uz(self, du1: np.ndarray, du2: np.ndarray) -> np.ndarray:
        """``sum_mu u_mu z_mu^T -> P E[u z^T]`` (D, n): diagonal on each copy, 0 on the constant row."""
        out = np.zeros((self.D, self.n))
        i = np.arange(self.n)
        out[i, i] = self.P * du1
        out[self.n + i, i] = self.P * du2
        return out

    def _m_step(self, co: dict, m: np.ndarray, du1: np.ndarray, du2: np.ndarray, y_sm: np.ndarray,
                y_sd: np.ndarray) -> np.ndarray:
        """§3g's m-step (:meth:`ClosureEpoch._m_step`) with its P-sums by their Gaussian values.

        ``E[G G^T] / P = alpha (diag(l) (tr(Lam m11) + s2 mcc) + l l^T o m11) + gamma (diag E[y s_D] - 2 diag(l E[y h]))``.
        """
        n, c, P, l = self.n, self.c, self.P, self.lam
        alpha, gamma = co["alpha"], co["gamma"]
        EGG = m[:n, :n] * self.lam2
        EGG *= c * c * alpha * P
        diag = alpha * (l @ np.diagonal(m[:n, :n]) + self.sig2 * m[-1, -1]) * l + gamma * (y_sd - 2 * l * du1)
        EGG[np.diag_indices(n)] += (c * c * P) * diag
        out = self.A_sandwich(m)
        out[:n, :n] += EGG  # c^2 E[G G^T]
        # - c (A E[x G^T] e^T + h.c.), E[x G^T] = -(S/R) u z^T diagonal on each copy: A of it is too
        i = np.arange(n)
        e1 = (c * co["sr"] * P) * (self.a11 * du1 - self.beta * du2)  # -(A AEx) on the delta_k copy
        e2 = (c * co["sr"] * P) * du1  # on the delta_{k-1} copy
        out[i, i] += 2 * e1
        out[n + i, i] += e2
        out[i, n + i] += e2
        return self._symmetric(out)

    def _f_numerator(self, co: dict, m: np.ndarray, W: np.ndarray, du1: np.ndarray,
                     du2: np.ndarray, q11: np.ndarray | None = None) -> np.ndarray:
        """``E[g_ab q_a z_b]`` (D, n), q = f1 m rho + f2 u (the per-example numerator of Pi(q z^T))."""
        n, l, s2 = self.n, self.lam, self.sig2
        out = np.empty((self.D, n))
        i = np.arange(n)
        for X, du, q in ((slice(0, n), du1, q11), (slice(n, 2 * n), du2, None)):
            mx = np.diagonal(m[X, :n])  # m at (copy X of direction i, delta_k of i)
            num = out[X]
            np.multiply(co["f2"], self._q(W[X, :n], W[X, -1]) if q is None else q, out=num)
            num += np.outer(co["f1"] * l * mx, l)
            num[i, i] += co["f1"] * l * l * mx - co["f2"] * l * du
        wc = W[-1, :n]
        out[-1] = co["f1"] * m[-1, -1] * s2 * l + co["f2"] * l * (s2 * (wc @ l + 2 * l * wc) + W[-1, -1] * self.r4)
        return out

    def _g_numerator(self, co: dict, m: np.ndarray, W: np.ndarray, du1: np.ndarray, y_sm, y_sd,
                     zero: bool, q11: np.ndarray | None = None) -> np.ndarray:
        """``E[g_ab (coef z_a z_b + 2 b_a z_b)]`` (n, n): the per-example numerator of Ĝ (§3k).

        ``coef = gm s_m + (gd + gT) s_D``, ``b = -(gm l o (m rho)_d + gd l o u_d) + gs k``, ``k_j = z_j (u z^T)_jj``.
        """
        n, l, P = self.n, self.lam, self.P
        gT = 0.0 if zero else co["gT"]
        gm, gd, gs, gc = co["gm"], co["gd"], co["gs"], co["gd"] + gT
        dm = np.diagonal(m[:n, :n])
        q11 = self._q(W[:n, :n], W[:n, -1]) if q11 is None else q11
        # E[left_a y_b], left_a = y_a coef + 2 z_a b_a; E[z_a b_a y_b] = A_a E[y_a y_b] - gd l_a q11_ab
        out = (2 * (-gm * l * dm + gs * P * du1))[:, None] * self.pair
        out -= (2 * gd * l)[:, None] * q11
        out += gm * y_sm[1]
        out += gc * y_sd[1]
        # minus l_a d_ab E[left_a]
        left = gm * y_sm[0] + gc * y_sd[0] + 2 * l * (-gm * l * dm - gd * du1 + gs * P * du1)
        out[np.diag_indices(n)] -= l * left
        return out

    def _w_step(self, co: dict, m: np.ndarray, W: np.ndarray, parts: tuple, y_sm, y_sd,
                zero: bool) -> np.ndarray:
        """``W' = w A W A^T - c (A F e^T + h.c.) + c^2 e G e^T`` with F, G projected (§3k, Gaussian sums).

        ``parts``: ``(<y h^1>, <y h^2>, <y y h^1>)`` of the step (:meth:`_du`, :meth:`_q`).
        """
        n, c, P, lam = self.n, self.c, self.P, self.lam
        inv = self.inv_norm
        du1, du2, q11 = parts
        F = self._f_numerator(co, m, W, du1, du2, q11)
        F *= self.f_scale
        F -= W[:, :n] * (co["f2"] * lam)
        G = self._g_numerator(co, m, W, du1, y_sm, y_sd, zero, q11)
        G *= self.g_scale
        gT = 0.0 if zero else co["gT"]
        G += W[:n, :n] * ((co["gd"] - P * gT + 2 * (P - 1) * gT) * self.lam2)
        if gT:  # T over the other examples by Wick, projected: sum_mu g_aa g_cc -> 2 P l_a^2 d_ac
            G[np.diag_indices(n)] += (P - 1) * gT * lam * (2 * P * lam ** 3 * np.diagonal(W)[:n]) * np.diagonal(inv)[:n]
        out = self.A_sandwich(W)
        out *= co["w"]
        F *= c
        AF = self.A_left(F)
        out[:, :n] -= AF
        out[:n, :] -= AF.T
        out[:n, :n] += (c * c) * G
        return self._symmetric(out)


def gaussian_closure_moments(X, y, lr: float, batch_size: int, momentum: float = 0.0,
                             rtol: float = 1e-6) -> EpochMoments:
    """Stationary moments of epoch SGD on linear regression by the compact closure with Gaussian
    data moments (docs/theory.md §3l).

    Same conventions, checks and return type as
    :func:`sgdnoise.theory.epoch_compact.compact_closure_moments` (without its start correction):
    the data enter only through the eigenvalues of H and the residuals' ``<r^2>``, ``<r^4>``.
    A large-N method for Gaussian-like inputs (§3l: what it approximates).  Time per epoch pass
    M = P // batch_size steps of O(N^2) each.
    """
    pb = epoch_problem(X, y, lr, batch_size, momentum)
    return solve_closure(GaussianCompactEpoch.of(pb, lr, momentum, batch_size), pb, lr, momentum, rtol)
