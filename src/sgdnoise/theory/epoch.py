"""Stationary moments of epoch-based SGD on linear regression at realistic sizes (docs/theory.md §3g).

First attempt (method ``epoch`` of `sgdnoise linear` is the closure of
:mod:`sgdnoise.theory.epoch_closure`): a position-resolved moment recursion through one epoch that tracks,
besides the first and second moments of the state, the correlation of the weights with
the usage of every example, ``c_mu = E[(n_mu - p) x]`` (``n_mu = 1`` once example mu has
been used in the current epoch, ``p = j S / P`` after j steps).  The recursion is exact
for additive noise (it then reproduces Kuehn-Rosenow, §3d/§3e, for ``S | P``); for the
state-dependent noise of linear regression the indicator-weighted second moments
``E[(n_mu - p) delta delta^T]`` are closed by the Bernoulli (two-point) closure described
in :func:`epoch_stationary_moments` and docs/theory.md §3g.  Everything runs in
the eigenbasis of H; nothing of size N^2 x N^2 is formed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse.linalg import LinearOperator, gmres

from sgdnoise.theory.epoch_exact import check_epoch_inputs
from sgdnoise.theory.regression_basis import _eigenbasis, _mean_square_unstable
from sgdnoise.theory.lyapunov import heavy_ball_blocks
from sgdnoise._spec import check_stable


@dataclass(frozen=True)
class EpochTheory:
    """Time-averaged stationary moments of epoch-based SGD predicted by the first attempt (§3g).

    ``var_*`` and ``tau`` are per eigendirection of ``H = X^T X / P`` in ascending order of
    its eigenvalues (``LinearRegression.hessian_eigenvalues`` for K = 1); null directions of
    H get zero variance (and ``tau = nan``).

    Attributes
    ----------
    hessian_eigenvalues : (N,) ascending.
    batches_per_epoch : M = P // S.
    mean : (N,) time-averaged E[delta], delta = w - w*.
    covariance : (N, N) time-averaged Cov delta.
    var_theta : (N,) its diagonal in the eigenbasis.
    var_v : (N,) variance of the velocity ``v_k = delta_k - delta_{k-1}`` per direction.
    tau : (N,) ``2 var_theta / var_v``.
    mean_residual, residual : relative residuals of the two fixed points (mean and second moment).
    """

    hessian_eigenvalues: np.ndarray
    batches_per_epoch: int
    mean: np.ndarray
    covariance: np.ndarray
    var_theta: np.ndarray
    var_v: np.ndarray
    tau: np.ndarray
    mean_residual: float
    residual: float


class _Epoch:
    """One epoch of the moment recursion in the eigenbasis (n directions, state x = (delta, delta_prev))."""

    def __init__(self, Z, r, lam, lr, momentum, S):
        self.Z, self.r, self.lam = Z, r, lam
        self.P, self.n = Z.shape
        self.eta, self.beta, self.S = lr, momentum, S
        self.M = self.P // S
        self.a11 = 1 + momentum - lr * lam

    # A acting on the rows of (k, 2n) arrays
    def _A_rows(self, V):
        n = self.n
        out = np.empty_like(V)
        out[:, :n] = V[:, :n] * self.a11 - self.beta * V[:, n:]
        out[:, n:] = V[:, :n]
        return out

    def _A_vec(self, v):
        return self._A_rows(v[None])[0]

    def run(self, mu0, X0=None):
        """One epoch from the epoch-start mean ``mu0`` (2n,) and second moment ``X0`` (2n, 2n) or None.

        Two recursions run side by side.  The mean and ``C = E[(n_mu - p) x]`` (P, 2n) with the
        state-dependent terms closed as in the module notes (first moments only).  The second
        moment about w* with ``C_r``, the usage correlations driven by the residual noise alone
        (exact for additive noise), and the state-dependent noise at the current second moment.
        Returns (mu_end, X_end, position-averaged mu, position-averaged X).
        """
        Z, r, lam, P, n, S, eta = self.Z, self.r, self.lam, self.P, self.n, self.S, self.eta
        C = np.zeros((P, 2 * n))
        Cr = np.zeros((P, 2 * n))
        mu = mu0.copy()
        X = None if X0 is None else X0.copy()
        mu_sum = np.zeros_like(mu)
        X_sum = None if X0 is None else np.zeros_like(X0)
        Zr = Z * r[:, None]
        r2 = r * r
        for j in range(self.M):
            mu_sum += mu
            p = j * S / P
            R = P - j * S
            pn = (j + 1) * S / P
            aR = S * (R - S) / (R * (R - 1)) if R > 1 else 0.0
            bR = S * (S - 1) / (R * (R - 1)) if R > 1 else 0.0
            kappa = -p * (1 - p) / (P - 1)
            q2 = j * S * (j * S - 1) / (P * (P - 1))
            if X is not None:
                X_sum += X
                Sig = X[:n, :n]
                zSz = np.einsum("pi,pi->p", Z @ Sig, Z)
                T0 = (Z.T * (zSz + r2)) @ Z - P * lam[:, None] * Sig * lam[None, :]
                W = (Cr.T * r) @ Z  # E[x Y^T], Y the summed residual kicks of the used examples
                noise = (aR * (1 - p) + bR * (p - q2)) * T0
                AXA = self._A_rows(self._A_rows(X).T)
                AW = self._A_rows(W.T).T
                AXA[:, :n] += (eta / R) * AW
                AXA[:n, :] += (eta / R) * AW.T
                AXA[:n, :n] += (eta / S) ** 2 * noise
                X = AXA
                Cr = self._A_rows(Cr) * (1 - S / R)
                Cr[:, :n] -= (eta / S) * (S / (P - 1)) * (1 - pn) * Zr
            m = mu[:n]
            s = np.einsum("pi,pi->p", Z, C[:, :n])
            Ybar = Z.T @ s
            mu = self._A_vec(mu)
            mu[:n] += (eta / R) * Ybar
            hc = Z * s[:, None] - C[:, :n] * lam[None, :]
            hm = Z * (Z @ m)[:, None] - (lam * m)[None, :]
            EnY = (1 - 2 * p) * hc + (p * (1 - p) - kappa) * hm
            Ene = (1 - p) * hm - hc
            EG = (S / (P - 1)) * (1 - pn) * Zr + aR * (Ene - EnY)
            C = self._A_rows(C) * (1 - S / R)
            C[:, :n] -= (eta / S) * EG
            C -= C.mean(axis=0, keepdims=True)
        M = self.M
        return mu, X, mu_sum / M, (None if X is None else X_sum / M)


def _full_batch_inverse(eps, beta, M):
    """Preconditioners: inverses of ``v -> v - A^M v`` and ``X -> X - A^M X A^{M T}`` (full-batch heavy ball)."""
    n = eps.size
    DM = np.linalg.matrix_power(heavy_ball_blocks(eps, beta), M)
    single = np.linalg.inv(np.eye(2) - DM)
    pair = np.linalg.inv(np.eye(4) - np.einsum("iab,jcd->ijacbd", DM, DM).reshape(n, n, 4, 4))
    idx = np.stack([np.arange(n), n + np.arange(n)], axis=1)
    rows, cols = idx[:, None, :, None], idx[None, :, None, :]

    def vec(v):
        out = np.empty(2 * n)
        out[idx] = (single @ v[idx][:, :, None])[:, :, 0]
        return out

    def mat(v):
        V = v.reshape(2 * n, 2 * n)
        out = np.empty((2 * n, 2 * n))
        out[rows, cols] = (pair @ V[rows, cols].reshape(n, n, 4, 1)).reshape(n, n, 2, 2)
        return out.ravel()

    return vec, mat


def epoch_stationary_moments(X, y, lr: float, batch_size: int, momentum: float = 0.0) -> EpochTheory:
    r"""Stationary moments of epoch-based SGD on linear regression, first attempt (docs/theory.md §3g).

    Loss ``(1/2P) sum_mu (w . x_mu - y_mu)^2``, heavy ball ``v_k = beta v_{k-1} - lr g_k``,
    ``w_k = w_{k-1} + v_k``, ``epoch`` sampling (a fresh permutation per epoch cut into
    ``M = P // S`` batches).  Derivation and accuracy: docs/theory.md §3g.

    Equations (eigenbasis of H, ``z_mu`` rotated inputs, ``r_mu`` residuals at w*,
    state ``x = (delta_k, delta_{k-1})``, ``p = jS/P`` and ``R = P - jS`` after j steps).
    Conditioned on the used set U the batch gradient noise has the exact mean
    ``E[G | U] = -(S/R) Y``, ``Y = sum_{mu in U} e~_mu(delta)`` (the per-example gradient
    fluctuations of the examples already used) and the exact second moment
    ``a_R sum_{mu not in U} e~ e~^T + b_R Y Y^T``, ``a_R = S(R-S)/(R(R-1))``,
    ``b_R = S(S-1)/(R(R-1))``.  The second moment ``X_j = E[x x^T]`` obeys

    .. math::

        X_{j+1} = A X_j A^T + \frac{\eta}{R}\left(A W_j e^T + e W_j^T A^T\right)
                 + \frac{\eta^2}{S^2}\,\big(a_R (1-p) + b_R (p - q_2)\big)\, T_0(X_j),

    ``T_0(X) = sum_mu z_mu z_mu^T (z_mu^T X_dd z_mu + r_mu^2) - P Lambda X_dd Lambda`` (the
    state-dependent noise of §3c), ``q_2 = jS(jS-1)/(P(P-1))``, and
    ``W_j = sum_mu c_mu r_mu z_mu^T`` with the usage correlations
    ``c_mu = E[(n_mu - p) x]`` of the residual kicks, which close exactly:

    .. math::

        c_\mu^{(j+1)} = (1 - S/R)\, A\, c_\mu^{(j)} - \eta\, e\, z_\mu r_\mu\, \frac{1 - (j+1)S/P}{P-1},
        \qquad c_\mu^{(0)} = 0 .

    This part is exact for additive noise (it is Kuehn-Rosenow's kernel, §3d/§3e, resolved
    by position); the correlation of the state-dependent kicks with the used set is left
    out (first order in lr: the relative error of tr Cov scales like lr, see the notes).
    The mean (O(lr) for epochs) comes from a separate first-moment recursion that keeps
    the state-dependent part of ``c_mu`` (closure in the notes).  Epoch-start fixed points
    by GMRES preconditioned with the full-batch epoch map; time averages over the M
    positions, as the simulator measures.

    Parameters
    ----------
    X : array (P, N)
    y : array (P,) or (P, 1)
    lr : float
        eta > 0 within the stability limits.
    batch_size : int
        S, 1 <= S <= P / 2.
    momentum : float
        beta in [0, 1).

    Returns
    -------
    EpochTheory
        ``var_theta``, ``var_v``, ``tau`` per eigendirection, ascending (K = 1 only).

    Raises
    ------
    UsageError
        Bad shapes or values (naming the argument), lr beyond the stability limit, or
        second moments that do not converge (mean-square instability).
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    check_epoch_inputs(X, y, lr, batch_size, momentum, max_batch=X.shape[0] // 2)
    P, N = X.shape
    S = int(batch_size)
    M = P // S
    basis = _eigenbasis(X, y.reshape(P, 1))
    lam_all, V_all = np.linalg.eigh(X.T @ X / P)
    order = np.argsort(basis.lam)
    lam, Z, V = basis.lam[order], basis.Z[:, order], basis.V[:, order]
    n = lam.size
    check_stable(lr, lam.max(), momentum)
    r = (Z @ basis.w[order] - y.reshape(P, 1))[:, 0]
    ep = _Epoch(Z, r, lam, float(lr), float(momentum), S)
    pre_v, pre_m = _full_batch_inverse(lr * lam, float(momentum), M)
    # mean: mu = L mu + l
    l_vec = ep.run(np.zeros(2 * n))[0]
    opv = LinearOperator((2 * n, 2 * n), matvec=lambda v: v - (ep.run(v)[0] - l_vec), dtype=np.float64)
    if np.any(l_vec):
        mu0, _ = gmres(opv, l_vec, rtol=1e-12, atol=0.0, restart=60, maxiter=5,
                       M=LinearOperator((2 * n, 2 * n), matvec=pre_v, dtype=np.float64))
    else:
        mu0 = np.zeros(2 * n)
    mres = float(np.linalg.norm(ep.run(mu0)[0] - mu0) / max(np.linalg.norm(mu0), 1e-300))
    D2 = 2 * n
    zero = np.zeros(2 * n)
    b = ep.run(zero, np.zeros((D2, D2)))[1]
    opm = LinearOperator((D2 * D2, D2 * D2),
                         matvec=lambda v: v - (ep.run(zero, v.reshape(D2, D2))[1] - b).ravel(), dtype=np.float64)
    sol, _ = gmres(opm, b.ravel(), rtol=1e-12, atol=0.0, restart=60, maxiter=5,
                   M=LinearOperator((D2 * D2, D2 * D2), matvec=pre_m, dtype=np.float64))
    X0 = sol.reshape(D2, D2)
    X0 = (X0 + X0.T) / 2
    _, Xend, _, X_bar = ep.run(zero, X0)
    res = float(np.linalg.norm(Xend - X0) / max(np.linalg.norm(X0), 1e-300))
    eig = np.linalg.eigvalsh(X0)
    if not np.all(np.isfinite(X0)) or eig[0] < -1e-8 * max(eig[-1], 0.0) or res > 1e-8:
        raise _mean_square_unstable(lr)
    m = ep.run(mu0)[2][:n]
    cov = X_bar[:n, :n]
    jv = np.hstack([np.eye(n), -np.eye(n)])
    vcov = jv @ X_bar @ jv.T
    to_all = V_all.T @ V
    diag_all = lambda c: np.einsum("ij,jk,ik->i", to_all, c, to_all)  # noqa: E731
    vt, vv = diag_all(cov), diag_all(vcov)
    with np.errstate(divide="ignore", invalid="ignore"):
        tau = np.where(vv > 0, 2 * vt / np.where(vv > 0, vv, 1), np.nan)
    return EpochTheory(lam_all, M, V @ m, V @ cov @ V.T, vt, vv, tau, mres, res)
