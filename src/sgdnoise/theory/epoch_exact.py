"""Exact stationary moments of epoch-based SGD on linear regression (docs/theory.md §3f).

No closed form is exact for SGD without replacement when the gradient noise
depends on the weights (linear regression: the batch Hessian ``H_B`` differs
from ``H``), because the batches of one epoch partition a random permutation and
are therefore correlated.  This module computes the stationary first and second
moments exactly -- averaged over every order of the examples, no sampling -- by
tracking the moments of the state jointly with the set of examples already used
in the current epoch.  The cost grows like the number of such sets,
``sum_j C(P, j S)``, so it is a reference for small problems (P up to about 16),
to measure how far the closed forms of :mod:`sgdnoise.theory.kuehn_rosenow` and
:mod:`sgdnoise.theory.exact` are from the truth.  See
:func:`epoch_exact_moments` for the equations and the method, and
docs/theory.md §3f for the derivation.
"""
from __future__ import annotations

import numpy as np
from scipy.sparse.linalg import LinearOperator, gmres

from sgdnoise.errors import UsageError
from sgdnoise.theory.epoch_positions import EpochMoments, PositionSums
from sgdnoise.theory.lyapunov import heavy_ball_blocks
from sgdnoise.theory.regression_basis import _eigenbasis, _mean_square_unstable
from sgdnoise._spec import check_int, check_momentum, check_positive, check_stable
from sgdnoise.theory.used_sets import index_entries, layers

#: Largest number of stored index entries (transitions times (1 + S + S^2)) accepted;
#: about 12 bytes each.  P = 16 with S = 4 needs about 3.1e7.
MAX_INDEX_ENTRIES = 60_000_000
#: Largest P accepted at all (the enumeration of sets is exponential in P).
MAX_EXAMPLES = 24


class _EpochMap:
    """The exact epoch map on the augmented second moment ``E[x~ x~^T]``, ``x~ = (delta_k, delta_{k-1}, 1)``.

    One step with batch B is linear on x~:
    ``A~_B = A~_0 - c sum_{mu in B} e_mu rho_mu^T`` with ``c = lr / S``,
    ``A~_0 = [[(1 + beta) I, -beta I, 0], [I, 0, 0], [0, 0, 1]]``,
    ``e_mu = (z_mu, 0, 0)``, ``rho_mu = (z_mu, 0, r_mu)`` (z the inputs in the eigenbasis).
    """

    def __init__(self, Z: np.ndarray, r: np.ndarray, lr: float, momentum: float, batch_size: int) -> None:
        P, n = Z.shape
        self.P, self.n, self.D = P, n, 2 * n + 1
        self.c = lr / batch_size
        A0 = np.zeros((self.D, self.D))
        A0[:n, :n] = (1 + momentum) * np.eye(n)
        A0[:n, n:2 * n] = -momentum * np.eye(n)
        A0[n:2 * n, :n] = np.eye(n)
        A0[-1, -1] = 1.0
        self.A0 = A0
        self.rho = np.zeros((P, self.D))
        self.rho[:, :n] = Z
        self.rho[:, -1] = r
        self.Z = Z
        self.layers = layers(P, batch_size)
        self.local_Z = [Z[layer.targets] for layer in self.layers]

    def step(self, j: int, m: np.ndarray) -> np.ndarray:
        """Moments of the sets after j + 1 batches from those after j: (n_s, D, D) -> (n_t, D, D)."""
        layer, Zl = self.layers[j], self.local_Z[j]
        n_s, n, D = m.shape[0], self.n, self.D
        n_t, nloc = layer.targets.shape
        rm = np.matmul(self.rho, m)  # (n_s, P, D): rho_mu^T m_U
        u = rm @ self.A0.T  # rho_mu^T m_U A0^T
        Y = rm @ self.rho.T  # (n_s, P, P): rho_mu^T m_U rho_nu
        total = (layer.pred_sum @ m.reshape(n_s, D * D)).reshape(n_t, D, D)
        out = self.A0 @ total @ self.A0.T
        U = (layer.first @ u.reshape(n_s * self.P, D)).reshape(n_t, nloc, D)
        G = (layer.second @ Y.reshape(-1)).reshape(n_t, nloc, nloc)
        ZU = np.einsum("tar,tad->trd", Zl, U)
        out[:, :n, :] -= self.c * ZU
        out[:, :, :n] -= self.c * ZU.transpose(0, 2, 1)
        out[:, :n, :n] += self.c**2 * np.einsum("tar,tab,tbq->trq", Zl, G, Zl, optimize=True)
        return layer.weight * out

    def epoch(self, m0: np.ndarray, visit=None) -> np.ndarray:
        """Epoch-end moment from the epoch-start moment (D, D); ``visit(m)`` sees the moment at each position."""
        m = m0[None]
        for j in range(len(self.layers)):
            if visit is not None:
                visit(m0 if j == 0 else m.sum(axis=0))
            m = self.step(j, m)
        return m.sum(axis=0)


def check_epoch_inputs(X: np.ndarray, y: np.ndarray, lr: float, batch_size: int, momentum: float,
                       max_batch: int) -> None:
    """Checks shared by the epoch methods (docs/theory.md §3f, §3g), each error naming its argument.

    X (P, N) and y (P,) or (P, 1) finite with the same P; ``lr > 0`` finite; ``batch_size`` an
    integer in ``[1, max_batch]``; ``momentum`` in [0, 1).
    """
    if X.ndim != 2 or y.ndim not in (1, 2) or y.shape[0] != X.shape[0]:
        raise UsageError(f"X must be (P, N) and y (P,) or (P, 1) with the same P; got {X.shape} and {y.shape}",
                         name="X")
    if y.ndim == 2 and y.shape[1] != 1:
        raise UsageError(f"y must have one output column (shape (P,) or (P, 1)); got {y.shape}", name="y")
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
        raise UsageError("X and y must be finite (no NaN or inf)", name="X")
    check_positive("lr", lr)
    check_int("batch_size", batch_size, 1, max_batch)
    check_momentum(momentum)


def _check_inputs(X: np.ndarray, y: np.ndarray, lr: float, batch_size: int, momentum: float) -> None:
    check_epoch_inputs(X, y, lr, batch_size, momentum, max_batch=X.shape[0])
    P = X.shape[0]
    if P > MAX_EXAMPLES or index_entries(P, int(batch_size)) > MAX_INDEX_ENTRIES:
        raise UsageError(
            f"X has P = {P} examples: with batch_size = {batch_size} the exact epoch moments need "
            f"{index_entries(P, int(batch_size)) if P <= 40 else 'too many':} index entries "
            f"(limit {MAX_INDEX_ENTRIES:.0e}, P <= {MAX_EXAMPLES}); every set of examples used so far in "
            f"an epoch is enumerated. Use a subset of the data (P up to about 16)"
        )


def epoch_exact_moments(
    X: np.ndarray, y: np.ndarray, lr: float, batch_size: int, momentum: float = 0.0
) -> EpochMoments:
    r"""Exact stationary moments of epoch-based SGD (with momentum) on linear regression.

    docs/theory.md §3f (derivation and checks).

    Loss ``(1/2P) sum_mu (w . x_mu - y_mu)^2``, heavy-ball SGD
    ``v_k = beta v_{k-1} - lr g_k``, ``w_k = w_{k-1} + v_k`` with
    ``g_k = (1/S) sum_{mu in B_k} x_mu (x_mu . w_{k-1} - y_mu)``, and ``epoch``
    sampling: each epoch a fresh uniformly random permutation of the P examples
    cut into ``M = P // S`` batches (the last ``P mod S`` examples of each
    permutation are dropped), as in :mod:`sgdnoise.dynamics.samplers`.

    Equations.  With ``delta = w - w*``, residuals ``r_mu = x_mu . w* - y_mu``
    and the state ``x_k = (delta_k, delta_{k-1})``, one step with batch B is the
    affine map

    .. math::

        x_k = A_B x_{k-1} + b_B,\quad
        A_B = \begin{pmatrix} (1+\beta) I - \eta H_B & -\beta I \\ I & 0 \end{pmatrix},\quad
        b_B = -\frac{\eta}{S} \begin{pmatrix} \sum_{\mu \in B} x_\mu r_\mu \\ 0 \end{pmatrix},

    ``H_B = (1/S) sum_{mu in B} x_mu x_mu^T``.  On the augmented state
    ``x~ = (x, 1)`` it is linear, ``A~_B = A~_0 - (eta/S) sum_{mu in B} e_mu rho_mu^T``
    with ``e_mu = (x_mu, 0, 0)``, ``rho_mu = (x_mu, 0, r_mu)`` and
    ``A~_0 = [[(1+beta) I, -beta I, 0], [I, 0, 0], [0, 0, 1]]``, so first and second
    moments together are the single matrix ``m = E[x~ x~^T]`` (its last column is
    ``(E x, 1)``) and a step maps ``m -> A~_B m A~_B^T``:

    .. math::

        \tilde A_B m \tilde A_B^T = \tilde A_0 m \tilde A_0^T
          - c \sum_{\mu \in B} \left(e_\mu u_\mu^T + u_\mu e_\mu^T\right)
          + c^2 \sum_{\mu, \nu \in B} e_\mu e_\nu^T\, \rho_\mu^T m \rho_\nu,
        \quad u_\mu = \tilde A_0 m \rho_\mu,\ c = \eta / S.

    Method (exact).  Within an epoch the law of the state depends on the set U
    of examples already used (a union of j whole batches after j steps).  For
    every such U let ``m_U = E[x~ x~^T 1{first j batches cover U}]``.  Given U
    the next batch is a uniformly random S-subset of the remaining examples, so

    .. math::

        m_{U'} = \binom{P - jS}{S}^{-1} \sum_{B \subset U',\, |B| = S}
                 \tilde A_B\, m_{U' \setminus B}\, \tilde A_B^T,
        \qquad |U'| = (j+1) S,

    starting from ``m_{empty} = m_0`` (the epoch-start moment).  The epoch-end
    moment ``sum_{|U| = MS} m_U`` is linear in ``m_0``: ``T(m_0)``.  The
    stationary epoch-start moment is its fixed point with ``m_0[-1, -1] = 1``:
    writing ``m_0 = E + m'`` (E the corner unit matrix), ``(I - T) m' = T(E) - E``,
    solved by GMRES (relative residual 1e-12; every iterate keeps a zero corner),
    preconditioned by the exact inverse of ``m -> m - A^M m A^{M T}`` for
    full-batch heavy ball (per pair of eigendirections), which removes the slow
    directions: about 10-15 passes.  The fixed point must be positive
    semidefinite and reproduce itself to 1e-9 (it does to ~1e-13); otherwise the
    second moments diverge (mean-square instability) and UsageError is raised.  The moment after j steps is ``sum_{|U| = jS} m_U`` (the sets of a
    size carry total probability 1); the time averages are their mean over
    j = 0..M-1.  Covariances are ``E[x x^T] - E[x] E[x]^T`` of these averages
    (variance about the stationary mean, as the simulator measures).

    Implementation: everything runs in the eigenbasis of H restricted to its
    range (null directions of H receive no gradient and no noise; their
    covariance is zero).  Sets of one size are numbered by colexicographic rank;
    for each size the sums over predecessors ``U' \ B`` are precomputed sparse
    0/1 matrices (cached per (P, S)), so that one pass through the epoch is three
    sparse products per step plus batched dense algebra on
    ``u_mu = m_U A~_0^T rho_mu`` (P per set) and ``rho_mu^T m_U rho_nu`` (P^2 per
    set) -- no per-set Python loop.  The number of transitions is
    ``sum_j C(P, (j+1) S) C((j+1) S, S)``; memory and time scale with
    ``index_entries(P, S)`` (transitions times ``1 + S + S^2``), refused above
    ``MAX_INDEX_ENTRIES`` (P = 16, S = 4: about 3e7 entries, a few seconds per
    pass).  K > 1 outputs are not supported.

    Parameters
    ----------
    X : array (P, N)
    y : array (P,) or (P, 1)
    lr : float
        eta > 0, below ``2 (1 + momentum) / lambda_max(H)`` and the mean-square
        stability limit.
    batch_size : int
        S, 1 <= S <= P.
    momentum : float
        beta in [0, 1).

    Returns
    -------
    EpochMoments

    Raises
    ------
    UsageError
        Bad shapes or values, a problem too large to enumerate, lr beyond the
        stability limit or the second moments diverging (no PSD fixed point).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(6, 2)); y = X @ np.ones(2) + rng.normal(size=6)
    >>> m = epoch_exact_moments(X, y, lr=0.1, batch_size=2)
    >>> m.var_theta.shape, m.batches_per_epoch
    ((2,), 3)
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    _check_inputs(X, y, lr, batch_size, momentum)
    P, N = X.shape
    S = int(batch_size)
    M = P // S
    Y = y.reshape(P, 1)
    basis = _eigenbasis(X, Y)
    n = basis.lam.size
    lam_all, V_all = np.linalg.eigh(X.T @ X / P)
    if n == 0:  # X = 0 or P < N interpolation with no residual: nothing moves
        z = np.zeros(N)
        zz = np.zeros((N, N))
        return EpochMoments(lam_all, M, z, zz, z, zz, z, z, zz, z, np.zeros((M, N)), np.zeros((M, N)), 0.0)
    check_stable(lr, basis.lam.max(), momentum)
    order = np.argsort(basis.lam)  # ascending, as the simulator
    Z, V = basis.Z[:, order], basis.V[:, order]
    r = (Z @ basis.w[order] - Y)[:, 0]
    if np.abs(r).max() <= 1e-12 * np.abs(Y).max():  # interpolation (rank P): no noise at w*
        r[:] = 0.0
    emap = _EpochMap(Z, r, float(lr), float(momentum), S)
    D = emap.D
    corner = np.zeros((D, D))
    corner[-1, -1] = 1.0
    rhs = emap.epoch(corner) - corner
    rhs[-1, -1] = 0.0  # total probability: 1 up to round-off

    def apply(v: np.ndarray) -> np.ndarray:
        m = v.reshape(D, D)
        return (m - emap.epoch((m + m.T) / 2)).ravel()

    if not np.any(rhs):  # no noise at w* (r = 0): the stationary state is w*
        sol = np.zeros(D * D)
    else:
        operator = LinearOperator((D * D, D * D), matvec=apply, dtype=np.float64)
        precondition = _gradient_descent_inverse(basis.lam[order] * lr, float(momentum), M)
        preconditioner = LinearOperator((D * D, D * D), matvec=precondition, dtype=np.float64)
        sol, _ = gmres(operator, rhs.ravel(), rtol=1e-12, atol=0.0, restart=60, maxiter=3, M=preconditioner)
    m0 = corner + sol.reshape(D, D)
    m0 = (m0 + m0.T) / 2
    sums = PositionSums(X, V)
    end = emap.epoch(m0, visit=sums.add)
    change = end - m0
    change[-1, -1] = 0.0  # the total probability, 1 up to round-off
    size = max(np.linalg.norm(m0 - corner), np.linalg.norm(rhs))
    residual = float(np.linalg.norm(change) / size) if size > 0 else float(np.linalg.norm(change))
    eig = np.linalg.eigvalsh(m0)
    if not np.all(np.isfinite(m0)) or eig[0] < -1e-8 * max(eig[-1], 0.0) or residual > 1e-9:
        # For the positive map T a PSD fixed point exists iff its spectral radius is < 1.
        raise _mean_square_unstable(lr)
    return sums.moments(sums.take(), residual)


def _gradient_descent_inverse(eps: np.ndarray, momentum: float, M: int):
    """Preconditioner: the inverse of ``m -> m - A^M m (A^M)^T`` for full-batch heavy ball.

    ``A~ = blockdiag(A(H), 1)`` with ``A(H)`` block diagonal in the eigenbasis
    (2 x 2 blocks ``D_i = [[1 + beta - eps_i, -beta], [1, 0]]``): the epoch map
    without noise and with ``E[b_B] = 0`` (``X^T r = 0``).  It captures the slow
    directions (``eps_i`` small, where ``I - T`` is nearly singular); what is left
    for GMRES is the noise, a few iterations.  Solved per pair of directions
    (4 x 4 systems), on vectors with a zero corner.
    """
    n = eps.size
    DM = np.linalg.matrix_power(heavy_ball_blocks(eps, momentum), M)
    pair = np.eye(4) - np.einsum("iab,jcd->ijacbd", DM, DM).reshape(n, n, 4, 4)
    pair_inv = np.linalg.inv(pair)
    single_inv = np.linalg.inv(np.eye(2) - DM)
    idx = np.stack([np.arange(n), n + np.arange(n)], axis=1)  # (n, 2): (delta_k, delta_{k-1}) of direction i
    rows, cols = idx[:, None, :, None], idx[None, :, None, :]
    D = 2 * n + 1

    def apply(v: np.ndarray) -> np.ndarray:
        v = v.reshape(D, D)
        out = np.zeros((D, D))
        out[rows, cols] = (pair_inv @ v[rows, cols].reshape(n, n, 4, 1)).reshape(n, n, 2, 2)
        out[idx, -1] = (single_inv @ v[idx, -1][:, :, None])[:, :, 0]
        out[-1, idx] = (single_inv @ v[-1, idx][:, :, None])[:, :, 0]
        return out.ravel()

    return apply
