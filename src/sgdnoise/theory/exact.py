"""Stationary covariance of SGD on linear regression (docs/theory.md §3a-§3c, §3e).

Loss ``L(w) = (1/2P) |X w - y|^2``, Hessian ``H = X^T X / P``, least-squares
minimiser w*, residuals ``r = X w* - y``, ``delta = w - w*``.  The batch gradient
noise depends on the state (docs/theory.md §2); its one-step covariance
averaged over a stationary delta with second moment M is

    E C(delta) = f [ (1/P) sum_mu x_mu x_mu^T (x_mu^T M x_mu + r_mu^2) - H M H ],

f from :func:`sgdnoise.theory.noise.batch_noise_factor`.  ``method="exact"``
solves the resulting linear equation for M without approximation (3c);
the other methods take the noise at w* (``C = E C(0)``) and solve the equations of
:mod:`sgdnoise.theory.lyapunov`.

Everything is computed in the eigenbasis of H from one thin SVD
``X = U s V^T``: ``lambda = s^2 / P``, rotated inputs ``Z = X V = U s``.
"""
from __future__ import annotations

import numpy as np
from scipy.sparse.linalg import LinearOperator, gmres

from sgdnoise.errors import UsageError
from sgdnoise._spec import check_momentum, check_positive, check_stable
from sgdnoise.theory.epoch_method import epoch_method_moments
from sgdnoise.theory.lyapunov import (
    QUADRATIC_METHODS,
    eigenbasis_covariance,
    to_original_basis,
    white_green,
)
from sgdnoise.theory.noise import SAMPLINGS, batch_noise_factor, noise_covariance
from sgdnoise.theory.regression_basis import _Eigenbasis, _eigenbasis, _mean_square_unstable

METHODS = ("exact",) + QUADRATIC_METHODS + ("epoch",)
EXACT_SAMPLINGS = ("with-replacement", "random-batch")


def _check_inputs(
    X: np.ndarray, y: np.ndarray, lr: float, batch_size: int, momentum: float, sampling: str, method: str
) -> None:
    """All argument checks of :func:`stationary_covariance`, before any work."""
    if X.ndim != 2 or y.ndim not in (1, 2) or y.shape[0] != X.shape[0]:
        raise UsageError(f"X must be (P, N) and y (P,) or (P, K) with the same P; got {X.shape} and {y.shape}")
    if sampling not in SAMPLINGS:
        raise UsageError(f"sampling must be one of {', '.join(SAMPLINGS)}; got {sampling!r}")
    if method not in METHODS:
        raise UsageError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    if method == "exact" and sampling not in EXACT_SAMPLINGS:
        raise UsageError(
            f"method='exact' needs sampling {' or '.join(map(repr, EXACT_SAMPLINGS))} (independent steps); "
            f"got {sampling!r}. For 'epoch' use method='anticorrelated'; 'continuum', 'discrete' and "
            f"'detailed-balance' accept every sampling"
        )
    if method == "epoch" and (sampling != "epoch" or y.ndim == 2 and y.shape[1] != 1):
        raise UsageError(
            f"method='epoch' (docs/theory.md §3k) needs sampling='epoch' and one output column; got "
            f"sampling={sampling!r}, y of shape {y.shape}"
        )
    if method == "anticorrelated" and sampling != "epoch":
        raise UsageError(
            f"method='anticorrelated' needs sampling='epoch'; got {sampling!r}. For independent steps use "
            f"'exact', 'discrete', 'continuum' or 'detailed-balance'"
        )
    if int(batch_size) != batch_size or not 1 <= batch_size <= X.shape[0]:
        raise UsageError(f"batch_size must be an integer between 1 and P = {X.shape[0]}; got {batch_size!r}")
    check_positive("lr", lr)
    check_momentum(momentum)


def _exact_moments(
    basis: _Eigenbasis, noise_cov: np.ndarray, lr: float, momentum: float, factor: float
) -> np.ndarray:
    """Solve docs/theory.md §3c in the eigenbasis by preconditioned GMRES.

    The 2N-state equation ``X = A X A^T + eta^2 B E C(delta) B^T`` closes on its
    delta-block: with ``g_ij = eta^2 (1 - beta^2) / d_ij`` the discrete Lyapunov
    response of :func:`sgdnoise.theory.lyapunov.white_green`,

        M - g o N(M) = g o C~,
        N(M) = f [ (1/P) sum_mu (z_mu z_mu^T) (x) Q_mu(M) - Lambda M Lambda ],
        Q_mu(M)_ab = sum_ij z_mu,i z_mu,j M_(i a),(j b),

    o the elementwise product (for one output Q_mu = z_mu^T M z_mu and the sum is
    ``Z^T diag(Q) Z / P``: two GEMMs per application).  For beta = 0 this is 3c
    multiplied through by ``1 - (1 - eps_i)(1 - eps_j)``.  The operator is never
    formed; GMRES runs on vec(M) with the exact diagonal of ``1 - g o N`` as
    preconditioner, which leaves ``g o N`` (spectral radius ~ f eta tr(H) / 2)
    to iterate on: a handful of applications, independent of lr lambda_min.
    """
    Z, lam = basis.Z, basis.lam
    P, r = Z.shape
    K = noise_cov.shape[0] // r
    n = r * K
    lam_ext = np.repeat(lam, K)
    eps = lr * lam_ext
    green = lr**2 * white_green(eps[:, None], eps[None, :], momentum)

    def state_noise(M: np.ndarray) -> np.ndarray:
        half = (Z @ M.reshape(r, K * r * K)).reshape(P, K, r, K)
        Q = np.einsum("pajb,pj->pab", half, Z)
        fourth = (Z.T @ (Z[:, None, :, None] * Q[:, :, None, :]).reshape(P, K * r * K)).reshape(n, n)
        return factor * (fourth / P - lam_ext[:, None] * M * lam_ext[None, :])

    Z2 = Z**2
    fourth_diag = np.repeat(np.repeat(Z2.T @ Z2 / P, K, axis=0), K, axis=1)
    diagonal = 1 - green * factor * (fourth_diag - lam_ext[:, None] * lam_ext[None, :])
    if np.any(diagonal <= 0):
        # g o N is similar to a symmetric operator (N is self-adjoint, g > 0), so a diagonal
        # element >= 1 bounds an eigenvalue >= 1 from below: the moments diverge.
        raise _mean_square_unstable(lr)
    operator = LinearOperator(
        (n * n, n * n), matvec=lambda v: v - (green * state_noise(v.reshape(n, n))).ravel(), dtype=np.float64
    )
    preconditioner = LinearOperator((n * n, n * n), matvec=lambda v: v / diagonal.ravel(), dtype=np.float64)
    rhs = (green * noise_cov).ravel()
    solution, info = gmres(operator, rhs, x0=rhs, M=preconditioner, rtol=1e-12, atol=0.0, restart=40, maxiter=50)
    M = solution.reshape(n, n)
    M = (M + M.T) / 2
    eigenvalues = np.linalg.eigvalsh(M)
    if info != 0 or eigenvalues[0] < -1e-8 * max(eigenvalues[-1], 0.0):
        # For the positive map g o N, a PSD solution exists iff its spectral radius is < 1.
        raise _mean_square_unstable(lr)
    return M


def stationary_covariance(
    X: np.ndarray,
    y: np.ndarray,
    lr: float,
    batch_size: int,
    momentum: float = 0.0,
    sampling: str = "with-replacement",
    method: str = "exact",
) -> np.ndarray:
    """Stationary covariance of w - w* for mini-batch SGD on linear regression.

    Loss ``(1/2P) |X w - y|^2``, heavy-ball momentum ``v_k = beta v_{k-1} - lr g_k``,
    ``w_k = w_{k-1} + v_k`` (docs/theory.md §1).

    Parameters
    ----------
    X : array (P, N)
    y : array (P,) or (P, K)
    lr : float
        eta, below the stability limit ``2 (1 + momentum) / lambda_max(H)``.
    batch_size : int
        S, 1 <= S <= P.
    momentum : float
        beta in [0, 1).
    sampling : {"with-replacement", "random-batch", "epoch", "fixed-order"}
    method : str
        ``"exact"`` (docs/theory.md §3c): exact finite-lr second moments with the
        state-dependent noise, for ``with-replacement`` and ``random-batch``
        (independent steps), with or without momentum; solved by
        preconditioned GMRES in the eigenbasis of H (see :func:`_exact_moments`).
        ``"continuum"`` (3a): ``H S + S H = lr C / (1 - momentum)``, C the noise
        covariance at w* (with momentum the lr -> 0 limit of 3b at fixed beta).
        ``"discrete"`` (3b): discrete Lyapunov equation on the 2N state
        ``(delta_k, delta_{k-1})`` with the noise at w*, treated as white.
        ``"detailed-balance"`` (3a): ``(lr / 2) H^-1 C / (1 - momentum)``, returned
        symmetrised, ``lr (H^-1 C + C H^-1) / (4 (1 - momentum))``; exact in the
        continuum limit only if [H, C] = 0.  (Gross et al., arXiv 2311.14120,
        compare the Lyapunov solution with a detailed-balance approximation; their
        equations could not be checked here, this is docs/theory.md §3a's form.)
        ``"anticorrelated"`` (3e): the discrete solution with the epoch noise
        kernel of Kuehn & Rosenow eq. 2, ``M = P // S`` batches per epoch, for
        ``sampling="epoch"`` only; closed form per eigen-pair, without the M powers of
        the 2N-state matrix (the epoch power sums come from an 8x8 block matrix per
        direction raised to the power M by repeated squaring, see
        :func:`sgdnoise.theory.lyapunov.epoch_sums`).
        ``"epoch"`` (3m): the usage-correlation closure for epoch sampling with the
        state-dependent noise, :func:`sgdnoise.theory.epoch_method.epoch_method_moments`: the
        compact closure (3k) where it takes at most ~30 s (estimated, ~11 P N^2 multiply-adds per
        step, ``epoch_compact.compact_cost``), else its Gaussian-moment form (3l, O(N^2) per step)
        for near-Gaussian data; §3h's epoch-start correction where S divides P; one output
        column only; the time-averaged covariance about the mean.  An approximation (accuracy
        tables in docs/theory.md §3k, §3l, §3m, §3h; docs/epoch.md); memory O(N^2 + P N).
        ``continuum``, ``discrete`` and ``detailed-balance`` accept every sampling
        (through the factor f of C; they ignore correlations between steps).

    Returns
    -------
    ndarray (N, N), or (N K, N K) for K outputs
        Flattened N-major, output index fastest (as ``noise_covariance``).
        Singular H (P < N, or collinear features): the solution on range(H).  The
        component of delta in the null space of H receives neither gradient nor
        noise (every per-example gradient lies in the row space of X) and keeps its
        initial value; the returned matrix is the stationary covariance of the
        projection of delta onto range(H), zero along the null space.  For P < N
        with X of full row rank the data are interpolated (r = 0), the noise
        vanishes at w* and the result is zero.

    Raises
    ------
    UsageError
        For bad shapes or values, a method that does not fit the sampling, lr at
        or beyond the stability limit, or (``exact``) beyond the mean-square
        stability limit of the state-dependent noise.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(30, 4)) / 2; y = X @ np.ones(4) + rng.normal(size=30) / 2
    >>> S = stationary_covariance(X, y, lr=0.1, batch_size=5)
    >>> S.shape
    (4, 4)
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    _check_inputs(X, y, lr, batch_size, momentum, sampling, method)
    Y = y.reshape(y.shape[0], -1)
    N, K = X.shape[1], Y.shape[1]
    if method == "epoch":
        return epoch_method_moments(X, Y[:, 0], lr, batch_size, momentum).moments.covariance
    basis = _eigenbasis(X, Y)
    if basis.lam.size == 0:
        return np.zeros((N * K, N * K))
    check_stable(lr, basis.lam[0], momentum)
    factor = batch_noise_factor(sampling, X.shape[0], int(batch_size))
    noise = noise_covariance(basis.Z, Y, int(batch_size), sampling, w=basis.w)
    if method == "exact":
        S = _exact_moments(basis, noise, lr, momentum, factor)
    else:
        lam = np.repeat(basis.lam, K)
        S = eigenbasis_covariance(lam, noise, lr, momentum, method, X.shape[0] // int(batch_size))
    return to_original_basis(basis.V, S, K)
