"""Usage-correlation closure for epoch-based SGD on linear regression (docs/theory.md §3g).

Tracks, besides the augmented second moment ``m = E[x~ x~^T]`` (``x~ = (delta_k, delta_{k-1}, 1)``),
the correlation of the whole augmented moment with the usage indicator of every example,
``D_mu = E[(n_mu - p) x~ x~^T]`` (its last column is ``c_mu = E[(n_mu - p) x]``).  Conditioned
on the used set U every quantity of the next step is an exact polynomial in the indicators;
the one approximation is the *linear closure*

    E[x~ x~^T | U] ~= m + alpha sum_sigma (n_sigma - p) D_sigma,   alpha = (P - 1) / (P p (1 - p)),

the best predictor affine in the indicators (it reproduces m and every D_mu exactly, and keeps
the sum rules sum_mu (n_mu - p) = 0, sum_mu D_mu = 0).  The expectations over U are then
hypergeometric moments of the indicators (up to third order; the fourth-order term, of order
b_R c^2 D, is dropped).  Exact for additive noise and for the first step of an epoch.
Public entry point: ``stationary_covariance(..., sampling="epoch", method="epoch")``.  Where
its error is (the epoch-start variance of the flat directions) and the term it misses:
docs/theory.md §3g-§3h (:mod:`sgdnoise.theory.epoch_kick`).

Implementation (the numbers of the dense derivation to round-off, tests/test_epoch_theory.py):
everything in the eigenbasis of H, where ``A`` is 2 x 2 per direction and
``Lh = (Lambda, 0, 0)`` diagonal, so every kick term is elementwise or rank one per
example: ``K_mu Q K_mu^T = s z_mu z_mu^T - z_mu g^T - g z_mu^T + (lam lam^T) o Q_dd`` with
``u = Q rho_mu``, ``s = rho_mu . u``, ``g = lam o u_d``; terms common to all examples drop out
of D (the sum rule projects them away).  The one irreducible cost is
``T(D_mu) = sum_nu z_nu z_nu^T (rho_nu^T D_mu rho_nu) - P Lambda D_mu Lambda`` for every mu:
two GEMMs of ``P x P x N^2 / 2`` on packed upper triangles, i.e. ~2 P^2 N^2 flops per step.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.sparse.linalg import LinearOperator, gmres

from sgdnoise.errors import UsageError
from sgdnoise.theory.epoch_exact import EpochMoments, _gradient_descent_inverse, check_epoch_inputs
from sgdnoise.theory.epoch_positions import PositionSums, combine
from sgdnoise.theory.epoch_weights import step_weights
from sgdnoise.theory.regression_basis import _eigenbasis, _mean_square_unstable
from sgdnoise._spec import check_stable
from sgdnoise.interrupts import raise_if_stop_requested


class ClosureEpoch:
    """One epoch of the closure in the eigenbasis: ``m`` (D, D) and the stack ``D_mu`` (P, D, D), D = 2n + 1.

    The kick of example mu is ``K_mu x~ = z_mu (rho_mu . x~) - Lh x~`` with ``rho_mu = (z_mu, 0, r_mu)``
    and ``Lh x~ = lam o delta_k``; ``sum_mu K_mu = 0`` (``Z^T Z = P Lambda``, ``Z^T r = 0``).
    """

    def __init__(self, Z: np.ndarray, r: np.ndarray, lam: np.ndarray, lr: float, momentum: float,
                 S: int) -> None:
        self.set_kicks(Z, self._setup(Z, r, lam, lr, momentum, S), lam)
        self.iu = np.triu_indices(self.n)
        self.ZZ = Z[:, self.iu[0]] * Z[:, self.iu[1]]  # (P, n(n+1)/2) packed z z^T

    def _setup(self, Z: np.ndarray, r: np.ndarray, lam: np.ndarray, lr: float, momentum: float,
               S: int) -> np.ndarray:
        """Sizes, step constants and the full-batch propagator; returns ``rho_mu = (z_mu, 0, r_mu)``, (P, D)."""
        P, n = Z.shape
        self.P, self.n, self.S, self.c, self.M, self.D = P, n, S, lr / S, P // S, 2 * n + 1
        self.lam = np.asarray(lam, float)
        self.a11, self.beta = 1 + momentum - lr * self.lam, momentum
        rho = np.zeros((P, self.D))
        rho[:, :n] = Z
        rho[:, -1] = r
        return rho

    def set_kicks(self, Z: np.ndarray, rho: np.ndarray, lh: np.ndarray) -> None:
        """Kicks ``z_mu (rho_mu . x~) - lh o delta_k``; requires ``sum_mu rho_mu z_mu^T = P (diag lh; 0; 0)``."""
        self.Z, self.rho, self.lh = Z, rho, np.asarray(lh, float)
        self.nz = np.flatnonzero(np.any(rho != 0, axis=0))  # columns rho uses (delta_k and the constant)
        self.rz = rho[:, self.nz]
        a, b = np.triu_indices(self.nz.size)
        self.tri = (self.nz[a], self.nz[b])
        self.RR = self.rz[:, a] * self.rz[:, b] * np.where(a == b, 1.0, 2.0)  # (P, T) packed rho rho^T
        self.lam2 = np.outer(self.lh, self.lh)

    def A_left(self, Q: np.ndarray) -> np.ndarray:
        """``A Q`` along axis -2 (A = [[a11, -beta, 0], [I, 0, 0], [0, 0, 1]] blockwise)."""
        n = self.n
        out = np.empty_like(Q)
        out[..., :n, :] = self.a11[:, None] * Q[..., :n, :] - self.beta * Q[..., n:2 * n, :]
        out[..., n:2 * n, :] = Q[..., :n, :]
        out[..., 2 * n:, :] = Q[..., 2 * n:, :]
        return out

    def A_sandwich(self, Q: np.ndarray) -> np.ndarray:
        """``A Q A^T`` for a symmetric Q (D, D), block by block (no pass over transposed D x D views).

        With ``Y = a o Q11 - beta Q12^T``: ``(A Q A^T)_11 = Y a - beta a o Q12 + beta^2 Q22``, ``_12 = Y``,
        ``_22 = Q11``, and the constant column ``(a o q1 - beta q2, q1, q_c)``.  Symmetric except for
        the rounding of the 11 block, which :meth:`_symmetric` removes.
        """
        n, a, be = self.n, self.a11, self.beta
        Q11, Q12 = Q[:n, :n], Q[:n, n:2 * n]
        out = np.empty_like(Q)
        Y = np.multiply(a[:, None], Q11, out=out[:n, n:2 * n])  # in place: this is a third of a §3l solve
        if be:
            Y -= be * Q12.T
        out11 = np.multiply(Y, a, out=out[:n, :n])
        if be:
            out11 -= be * (a[:, None] * Q12)
            out11 += be * be * Q[n:2 * n, n:2 * n]
        out[n:2 * n, :n] = Y.T
        out[n:2 * n, n:2 * n] = Q11
        out[:n, -1] = out[-1, :n] = a * Q[:n, -1] - be * Q[n:2 * n, -1]
        out[n:2 * n, -1] = out[-1, n:2 * n] = Q[:n, -1]
        out[-1, -1] = Q[-1, -1]
        return out

    def _symmetric(self, out: np.ndarray) -> np.ndarray:
        """Symmetrises the 11 block in place (the only one a step updates from both sides); returns out."""
        n = self.n
        out[:n, :n] += out[:n, :n].T.copy()
        out[:n, :n] *= 0.5
        return out

    def _kick_parts(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``s_mu = rho_mu . u_mu`` and ``g_mu = lam o (u_mu)_delta`` for vectors u (P, D)."""
        return np.einsum("pd,pd->p", self.rz, u[:, self.nz]), u[:, :self.n] * self.lh

    def T_stack(self, Dm: np.ndarray) -> np.ndarray:
        """``sum_nu z_nu z_nu^T (rho_nu^T D_mu rho_nu)`` for every mu, (P, n, n) (packed GEMMs)."""
        s = Dm[:, self.tri[0], self.tri[1]] @ self.RR.T  # (P_mu, P_nu)
        packed = s @ self.ZZ
        out = np.empty((Dm.shape[0], self.n, self.n))
        out[:, self.iu[0], self.iu[1]] = packed
        out[:, self.iu[1], self.iu[0]] = packed
        return out

    def _m_step(self, co: dict, m: np.ndarray, um: np.ndarray, u: np.ndarray, uZ: np.ndarray) -> np.ndarray:
        """``m_{j+1} = A m A^T - c (A E[x G^T] e^T + h.c.) + c^2 E[G G^T]`` (docs/theory.md §3g).

        ``E[x G^T] = -(S/R) sum_mu D_mu K_mu^T``; ``sum_mu D_mu = 0`` (the sum rule) is used.
        ``E[G G^T] = alpha T(m) + gamma sum_mu K_mu D_mu K_mu^T`` with ``alpha = a_R (1 - p) + b_R v2``,
        ``gamma = b_R t3 / v2 - a_R``: one sandwich ``Z^T diag(alpha s_m + gamma s_D) Z``; the cross
        terms ``sum_mu g_mu z_mu^T`` are ``uZ = sum_mu u_mu z_mu^T`` scaled by lam (no product of their own).
        """
        n, Z, c = self.n, self.Z, self.c
        sm, _ = self._kick_parts(um)
        sd, _ = self._kick_parts(u)
        alpha, gamma = co["alpha"], co["gamma"]
        gz = uZ[:n] * self.lh[:, None]  # sum_mu g_mu z_mu^T, g_mu = lam o (u_mu)_delta
        EGG = (Z.T * (alpha * sm + gamma * sd)) @ Z - (alpha * self.P) * self.lam2 * m[:n, :n] - gamma * (gz + gz.T)
        AEx = self.A_left(-c * co["sr"] * uZ)
        out = self.A_sandwich(m)
        out[:, :n] -= AEx
        out[:n, :] -= AEx.T
        out[:n, :n] += c * c * EGG
        return self._symmetric(out)

    def _second_order(self, co: dict, um: np.ndarray, u: np.ndarray, uZ: np.ndarray, Dm: np.ndarray,
                      zero: bool) -> np.ndarray:
        """``G_mu = gT T(D_mu) + gm K m K^T + gd K D K^T + gs (z k^T + k z^T)``, common parts dropped."""
        n, Z = self.n, self.Z
        sm, gm = self._kick_parts(um)
        sd, gd = self._kick_parts(u)
        k = self.rz @ uZ[self.nz]  # (P, n): rho_mu^T sum_nu D_nu K_nu^T
        b = -(co["gm"] * gm + co["gd"] * gd) + co["gs"] * k
        left = np.stack([(co["gm"] * sm + co["gd"] * sd)[:, None] * Z + b, Z], axis=2)  # (P, n, 2)
        right = np.stack([Z, b], axis=1)  # (P, 2, n)
        G = np.matmul(left, right)
        G += (co["gd"] - self.P * co["gT"]) * self.lam2 * Dm[:, :n, :n]
        if not zero:  # T(0) = 0 at the epoch start
            G += co["gT"] * self.T_stack(Dm)
        return G

    def _d_step(self, co: dict, um: np.ndarray, u: np.ndarray, uZ: np.ndarray, Dm: np.ndarray,
                zero: bool) -> np.ndarray:
        """``D_mu`` after the step (docs/theory.md §3g), blockwise on ``(delta_k, delta_{k-1}, 1)``.

        ``D' = w A D A^T - c (A F e^T + e F^T A^T) + c^2 e G e^T`` projected onto ``sum_mu D_mu = 0``;
        ``F_mu = f1 m rho z^T + f2 (D rho z^T - D Lh^T)`` the first-order kick.
        """
        n, Z, c, w, a, be, lh = self.n, self.Z, self.c, co["w"], self.a11, self.beta, self.lh
        f2 = co["f2"]
        B11, B12, B22 = Dm[:, :n, :n], Dm[:, :n, n:2 * n], Dm[:, n:2 * n, n:2 * n]
        b1, b2 = Dm[:, :n, -1], Dm[:, n:2 * n, -1]
        q = co["f1"] * um + f2 * u  # (P, D)
        T11 = a[:, None] * B11
        T11 -= be * Dm[:, n:2 * n, :n]  # (A D)_{1,1}
        AF1 = (a * q[:, :n] - be * q[:, n:2 * n])[:, :, None] * Z[:, None, :]
        AF1 -= f2 * T11 * lh
        AF1 += AF1.transpose(0, 2, 1).copy()
        Dn = np.empty_like(Dm)
        D11 = a[:, None] * B12
        D11 -= be * B22
        D11 *= -be
        D11 += T11 * a
        D11 *= w
        D11 -= c * AF1
        D11 += (c * c) * self._second_order(co, um, u, uZ, Dm, zero)
        Dn[:, :n, :n] = D11
        Dn[:, :n, :n] += D11.transpose(0, 2, 1)
        Dn[:, :n, :n] *= 0.5
        D21 = B11 * (w * a + c * f2 * lh)
        D21 -= (w * be) * B12
        D21 -= c * q[:, :n, None] * Z[:, None, :]
        Dn[:, n:2 * n, :n] = D21
        Dn[:, :n, n:2 * n] = D21.transpose(0, 2, 1)
        Dn[:, n:2 * n, n:2 * n] = w * B11
        d13 = w * (a * b1 - be * b2) - c * (q[:, -1:] * Z - f2 * b1 * lh)
        Dn[:, :n, -1] = Dn[:, -1, :n] = d13
        Dn[:, n:2 * n, -1] = Dn[:, -1, n:2 * n] = w * b1
        Dn[:, -1, -1] = w * Dm[:, -1, -1]
        Dn -= Dn.mean(0, keepdims=True)
        return Dn

    def step(self, j: int, m: np.ndarray, Dm: np.ndarray | None, need_d: bool = True):
        """Moments after step j + 1 from those after j; ``Dm=None`` means all D_mu = 0 (epoch start)."""
        co = step_weights(self.P, self.S, j)
        zero = Dm is None
        if zero:
            Dm = np.zeros((self.P, self.D, self.D))
        um = self.rz @ m[self.nz]  # (P, D): m rho_mu
        u = np.matmul(Dm, self.rho[:, :, None])[:, :, 0]  # D_mu rho_mu
        uZ = u.T @ self.Z  # sum_mu u_mu z_mu^T, shared by both steps
        m_new = self._m_step(co, m, um, u, uZ)
        return m_new, (self._d_step(co, um, u, uZ, Dm, zero) if need_d else None)

    def epoch(self, m0: np.ndarray, visit=None) -> np.ndarray:
        """Epoch-end moment from the epoch-start moment (D restarts at 0); ``visit(m)`` sees each position's moment."""
        m, Dm = m0, None
        for j in range(self.M):
            if visit is not None:
                visit(m)
            m, Dm = self.step(j, m, Dm, need_d=j + 1 < self.M)
        return m


def closure_moments(X, y, lr: float, batch_size: int, momentum: float = 0.0,
                    epoch_class: type = ClosureEpoch) -> EpochMoments:
    """Stationary moments of epoch SGD on linear regression by the usage-correlation closure (docs/theory.md §3g).

    Same conventions and return type as :func:`sgdnoise.theory.epoch_exact.epoch_exact_moments`
    (time averages over the M positions, ``var_theta`` per ascending eigendirection).  Exact
    for additive noise and for the first step of an epoch; otherwise the linear closure in
    the indicators (module notes).  Solved by :func:`solve_epoch_map` (GMRES over epoch passes).
    Memory a few 8 P (2N+1)^2 bytes; time ~2 P^2 N^2 flops per step (see :func:`closure_cost`).
    ``epoch_class`` (tests only): another implementation of the same epoch map.
    """
    X = np.asarray(X, float)
    y = np.asarray(y, float)
    check_epoch_inputs(X, y, lr, batch_size, momentum, max_batch=X.shape[0] // 2)
    P = X.shape[0]
    S = int(batch_size)
    seconds, size = closure_cost(P, X.shape[1], S)
    if size > MAX_BYTES:
        raise UsageError(f"the epoch closure needs about {size / 1e9:.1f} GB for P = {P}, N = {X.shape[1]} "
                         f"(its D_mu stack, 4 x 8 P (2N+1)^2 bytes; limit {MAX_BYTES / 1e9:.0f} GB) and about "
                         f"{seconds:.0f} s; use a subset of the data or fewer features", name="X")
    basis, order = _sorted_basis(X, y, lr, momentum)
    ep = epoch_class(basis.Z[:, order], _residuals(basis, order, y), basis.lam[order], float(lr), float(momentum), S)
    return solve_epoch_map(ep, X, basis.V[:, order], lr, momentum, rtol=1e-9, max_residual=1e-6)



class EpochProblem(NamedTuple):
    """Checked data of an epoch closure in the Hessian eigenbasis: ``X`` (P, N), the rotated inputs
    ``Z`` (P, n), the residuals at w* ``r`` (P,), the ascending eigenvalues ``lam`` (n,) and eigenvectors ``V`` (N, n)."""

    X: np.ndarray
    Z: np.ndarray
    r: np.ndarray
    lam: np.ndarray
    V: np.ndarray


def epoch_problem(X, y, lr: float, batch_size: int, momentum: float) -> EpochProblem:
    """The inputs checked (:func:`sgdnoise.theory.epoch_exact.check_epoch_inputs`, S <= P / 2) and rotated
    into the eigenbasis of H, shared by every closure form (§3k, §3l, §3m)."""
    X = np.asarray(X, float)
    y = np.asarray(y, float)
    check_epoch_inputs(X, y, lr, batch_size, momentum, max_batch=X.shape[0] // 2)
    basis, order = _sorted_basis(X, y, lr, momentum)
    return EpochProblem(X, basis.Z[:, order], _residuals(basis, order, y), basis.lam[order], basis.V[:, order])


def solve_closure(ep, problem: EpochProblem, lr: float, momentum: float, rtol: float) -> EpochMoments:
    """:func:`solve_epoch_map` for ``problem``, refused as unstable beyond 100 ``rtol`` of epoch-to-epoch change."""
    return solve_epoch_map(ep, problem.X, problem.V, lr, momentum, rtol=rtol, max_residual=100 * rtol)


def _sorted_basis(X: np.ndarray, y: np.ndarray, lr: float, momentum: float):
    """The Hessian eigenbasis of the data (one output), the ascending order of its eigenvalues; lr checked."""
    basis = _eigenbasis(X, y.reshape(-1, 1))
    order = np.argsort(basis.lam)
    check_stable(lr, basis.lam.max(), momentum)
    return basis, order


def _residuals(basis, order: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``r_mu = z_mu . w* - y_mu``, the residuals at the minimum (sum_mu z_mu r_mu = 0).

    Set to zero when they are round-off (interpolation, e.g. P <= N): then there is no noise at w*
    and the stationary state is w* itself, as in :func:`sgdnoise.theory.epoch_exact.epoch_exact_moments`.
    """
    r = (basis.Z[:, order] @ basis.w[order])[:, 0] - y
    return np.zeros_like(r) if np.abs(r).max() <= 1e-12 * np.abs(y).max() else r


def solve_epoch_map(ep, X: np.ndarray, V: np.ndarray, lr: float, momentum: float, rtol: float,
                    max_residual: float) -> EpochMoments:
    """The stationary epoch-start moment of an epoch map ``ep`` and the time averages over its positions.

    The epoch map is linear in the epoch-start moment m0 (the usage correlations restart at 0),
    so ``(I - T) m' = T(E) - E`` (E the corner unit matrix) is solved by GMRES, one epoch pass
    per iteration, preconditioned with the exact inverse of the full-batch epoch map
    (docs/theory.md §3f).  GMRES builds the solution from the moments it applied the map to, and
    the epoch end and the position sums are linear in the start (:mod:`sgdnoise.theory.epoch_positions`),
    so both follow at the fixed point from the same combination of the passes already made (a pass of
    its own only if that combination does not reproduce the solution to 1e-10).  Each pass first
    checks for Ctrl-C (:func:`raise_if_stop_requested`).  Refused as mean-square unstable when the
    fixed point is not finite or its epoch-to-epoch change exceeds ``max_residual``.
    """
    D = ep.D
    corner = np.zeros((D, D))
    corner[-1, -1] = 1.0
    sums = PositionSums(X, V)
    passes: list[tuple[np.ndarray, np.ndarray, dict]] = []  # (start, end, position sums) of every pass

    def run(m0: np.ndarray) -> np.ndarray:
        raise_if_stop_requested()  # a pass takes up to minutes; Ctrl-C should not wait for all of them
        end = ep.epoch(m0, visit=sums.add)
        passes.append((m0, end, sums.take()))
        return end

    rhs = run(corner) - corner
    rhs[-1, -1] = 0.0

    def apply(v: np.ndarray) -> np.ndarray:
        mm = v.reshape(D, D)
        return (mm - run((mm + mm.T) / 2)).ravel()

    op = LinearOperator((D * D, D * D), matvec=apply, dtype=float)
    pre = LinearOperator((D * D, D * D), matvec=_gradient_descent_inverse(ep.lam * lr, float(momentum), ep.M),
                         dtype=float)
    sol, _ = gmres(op, rhs.ravel(), rtol=rtol, atol=0.0, restart=60, maxiter=4, M=pre)
    m0 = corner + sol.reshape(D, D)
    m0 = (m0 + m0.T) / 2
    end, position_sums = _at_combination(passes, m0) or (run(m0), passes[-1][2])
    change = end - m0
    change[-1, -1] = 0
    size = max(np.linalg.norm(m0 - corner), np.linalg.norm(rhs))  # both 0 without noise at w*
    res = float(np.linalg.norm(change) / size) if size > 0 else float(np.linalg.norm(change))
    if not np.all(np.isfinite(m0)) or res > max_residual:
        raise _mean_square_unstable(lr)
    return sums.moments(position_sums, res)


def _at_combination(passes: list[tuple[np.ndarray, np.ndarray, dict]], m0: np.ndarray):
    """Epoch end and position sums from ``m0`` as the least-squares combination of the passes' starts.

    None when the combination misses ``m0`` by more than 1e-10 (relative) or needs weights so large
    that round-off would matter; the caller then makes the pass.
    """
    starts = np.stack([p[0].ravel() for p in passes], axis=1)
    weights = np.linalg.lstsq(starts, m0.ravel(), rcond=None)[0]
    scale = np.linalg.norm(m0)
    miss = np.linalg.norm(starts @ weights - m0.ravel())
    if not np.isfinite(miss) or miss > 1e-10 * scale or np.abs(weights).max() * np.abs(starts).max() > 1e6 * scale:
        return None
    end = sum(w * p[1] for w, p in zip(weights, passes))
    return end, combine([p[2] for p in passes], weights)


#: Seconds per ``P^2 N^2`` of one step (one core, measured at N = 100, P = 200; docs/theory.md §3g).
SECONDS_PER_UNIT = 3.5e-10
#: Largest memory (bytes, :func:`closure_cost`) :func:`closure_moments` accepts.
MAX_BYTES = 4e9
#: GMRES epoch passes typically needed (rtol 1e-9), plus the right-hand side and the recorded pass.
PASSES = 22


def closure_cost(P: int, N: int, batch_size: int) -> tuple[float, float]:
    """Estimated (seconds, bytes) of :func:`closure_moments`: ``PASSES`` epochs of M steps; the D_mu stack."""
    seconds = PASSES * (P // batch_size) * SECONDS_PER_UNIT * float(P) ** 2 * float(N) ** 2
    return seconds, 8.0 * P * (2 * N + 1) ** 2 * 4
