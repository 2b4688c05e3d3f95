"""Stationary covariance of SGD near a quadratic minimum from Lyapunov-type equations.

docs/theory.md §3a, §3b and §3e.  Near a minimum with Hessian H the deviation
delta = theta - theta* of heavy-ball SGD (momentum beta, learning rate eta) obeys

    delta_k = delta_{k-1} + beta (delta_{k-1} - delta_{k-2}) - eta H delta_{k-1} - eta xi_k,

with gradient noise xi_k of one-step covariance C.  In the eigenbasis of H
(``H = V diag(lambda) V^T``, ``C~ = V^T C V``) the recursion splits into one 2x2
system per eigen-direction,

    D_i = [[1 + beta - eps_i, -beta], [1, 0]],    eps_i = eta lambda_i,

and every stationary second moment of delta is ``C~_ij`` times a scalar that
depends on the pair (i, j) only.  With ``a_i(k) = (D_i^k)_{11}`` the impulse
response of direction i and ``kappa_h`` the noise kernel (section 2),

    Sigma~_ij = eta^2 C~_ij sum_{k, l >= 0} a_i(k) a_j(l) kappa(k - l).

White noise (kappa_h = delta_h0) gives the discrete Lyapunov solution of 3b in
closed form,

    sum_k a_i(k) a_j(k) = (1 - beta^2) / d_ij,
    d_ij = (1 - beta)^2 [eps_i (1 + beta - eps_j/2) + eps_j (1 + beta - eps_i/2)]
           + beta (eps_i - eps_j)^2,

(derived here from the 4x4 recursion of the products a_i(k) a_j(k'); every term
of d_ij is non-negative below the stability limit, so there is no cancellation
as eps -> 0).  For ``beta = 0`` it is ``1 / (1 - (1 - eps_i)(1 - eps_j))``, and
for i = j it reproduces the scalar formula of 3b.
"""
from __future__ import annotations

import numpy as np

from sgdnoise._spec import check_int, check_momentum, check_positive, check_stable
from sgdnoise.errors import UsageError

QUADRATIC_METHODS = ("continuum", "discrete", "detailed-balance", "anticorrelated")


def heavy_ball_blocks(eps: np.ndarray, momentum: float) -> np.ndarray:
    """The deterministic heavy-ball step per eigendirection, ``D_i = [[1 + beta - eps_i, -beta], [1, 0]]``.

    ``eps_i = lr lambda_i``; shape (n, 2, 2), acting on ``(delta_k, delta_{k-1})`` (docs/theory.md §3b).
    """
    eps = np.asarray(eps, np.float64)
    D = np.zeros((eps.size, 2, 2))
    D[:, 0, 0] = 1 + momentum - eps
    D[:, 0, 1] = -momentum
    D[:, 1, 0] = 1.0
    return D


def range_eigenbasis(hessian: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positive eigenvalues of a symmetric Hessian and their eigenvectors (its range).

    Eigenvalues below ``n * eps * |lambda|_max`` count as zero (the rank
    tolerance of ``numpy.linalg.matrix_rank``); a clearly negative one means the
    point is not a minimum and raises ``UsageError``.
    """
    lam, V = np.linalg.eigh(hessian)
    tol = lam.size * np.finfo(np.float64).eps * (np.abs(lam).max() if lam.size else 0.0)
    if lam.size and lam[0] < -tol:
        raise UsageError(
            f"hessian must be positive semi-definite (a minimum); its smallest eigenvalue is {lam[0]:.6g}"
        )
    keep = lam > tol
    return lam[keep], V[:, keep]


def to_original_basis(V: np.ndarray, S: np.ndarray, n_outputs: int = 1) -> np.ndarray:
    """``(V x I_K) S (V x I_K)^T`` for S in the eigenbasis, index (direction, output), output fastest."""
    N, r = V.shape
    K = n_outputs
    half = np.tensordot(V, S.reshape(r, K, r, K), axes=(1, 0))  # (N, K, r, K)
    full = np.tensordot(half, V, axes=(2, 1))  # (N, K, K, N)
    return full.transpose(0, 1, 3, 2).reshape(N * K, N * K)


def _pair_denominator(eps_i: np.ndarray, eps_j: np.ndarray, momentum: float) -> np.ndarray:
    """d_ij of the module docstring (broadcasts over eps_i, eps_j)."""
    b = momentum
    return (1 - b) ** 2 * (eps_i * (1 + b - eps_j / 2) + eps_j * (1 + b - eps_i / 2)) + b * (
        eps_i - eps_j
    ) ** 2


def white_green(eps_i: np.ndarray, eps_j: np.ndarray, momentum: float) -> np.ndarray:
    """``sum_k a_i(k) a_j(k) = (1 - beta^2) / d_ij``: white-noise response of the pair (i, j).

    ``eta^2 C~_ij`` times this is the delta-block of the solution X of the discrete
    Lyapunov equation ``X = A X A^T + eta^2 B C B^T`` (docs/theory.md §3b).  Infinite
    where ``eps_i = eps_j = 0``.
    """
    with np.errstate(divide="ignore"):
        return (1 - momentum**2) / _pair_denominator(eps_i, eps_j, momentum)


def epoch_sums(eps: np.ndarray, momentum: float, epoch_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Weighted power sums of D_i for the epoch kernel, shape (n, 2, 2) each.

    Returns ``A1 = sum_{h=1}^{M-1} (M - h) D^h`` and
    ``A2 = sum_{m=0}^{M-2} C(M - m, 2) D^m`` (C the binomial coefficient).  Both
    are read off ``T^M`` for the block chain ``T = [[D, I, 0, 0], [0, I, I, 0],
    [0, 0, I, I], [0, 0, 0, I]]``, whose first block row is
    ``(T^n)_{1, k+1} = sum_m C(n - m - 1, k - 1) D^m``: ``A1 = D (T^M)_13`` and
    ``A2 = (T^M)_13 + (T^M)_14``.  ``numpy.linalg.matrix_power`` squares the stack
    of 8x8 matrices log2(M) times; all terms are summed without the cancelling
    closed form ``(D^M + (1 - D) M - 1) (1 - D)^-2`` of Kuehn & Rosenow eq. 16,
    so ``eps -> 0`` and large M stay accurate.
    """
    n = eps.size
    D = heavy_ball_blocks(eps, momentum)
    T = np.zeros((n, 8, 8))
    T[:, 0:2, 0:2] = D
    for k in range(1, 4):
        T[:, 2 * k : 2 * k + 2, 2 * k : 2 * k + 2] = np.eye(2)
    for k in range(3):
        T[:, 2 * k : 2 * k + 2, 2 * k + 2 : 2 * k + 4] = np.eye(2)
    TM = np.linalg.matrix_power(T, epoch_length)
    T13, T14 = TM[:, 0:2, 4:6], TM[:, 0:2, 6:8]
    return D @ T13, T13 + T14


def epoch_green(
    eps_i: np.ndarray, eps_j: np.ndarray, w_i: np.ndarray, w_j: np.ndarray, momentum: float
) -> np.ndarray:
    """``sum_{k,l} a_i(k) a_j(l) kappa(k - l)`` for the epoch kernel (docs/theory.md §3e), cancellation-free.

    ``w`` is the first row of ``A2 / (M (M - 1))`` from :func:`epoch_sums`, shape
    (..., 2).  Because the kernel sums to zero, the sum equals
    ``sum_h |kappa_h| [(Y_11 - R_ij(h)) + (Y_11 - R_ji(h))]`` with
    ``R_ij(h) = sum_k a_i(k + h) a_j(k)``, and
    ``Y_11 - R_ij(h) = e1^T (1 + D_i + ... + D_i^{h-1}) (1 - D_i) Y e1`` where
    ``(1 - D_i) Y e1 = (eps_i - beta eps_j, beta eps_i - eps_j) / d_ij`` (derived here):
    no term grows like 1/eps, so flat directions are accurate.
    """
    u_ij = w_i[..., 0] * (eps_i - momentum * eps_j) - w_i[..., 1] * (eps_j - momentum * eps_i)
    u_ji = w_j[..., 0] * (eps_j - momentum * eps_i) - w_j[..., 1] * (eps_i - momentum * eps_j)
    return (u_ij + u_ji) / _pair_denominator(eps_i, eps_j, momentum)


def eigenbasis_covariance(
    lam: np.ndarray,
    noise_cov: np.ndarray,
    lr: float,
    momentum: float,
    method: str,
    epoch_length: int = 1,
) -> np.ndarray:
    """Stationary covariance in the eigenbasis of H for noise C~ that does not depend on the state.

    Parameters
    ----------
    lam : array (n,)
        Positive eigenvalues of H.
    noise_cov : array (n, n)
        C~ = V^T C V.
    lr, momentum : float
    method : str
        ``continuum``: ``H S + S H = eta C / (1 - beta)`` (docs/theory.md §3a; with momentum
        the eta -> 0 limit of 3b at fixed beta, i.e. SGD with the effective learning
        rate eta / (1 - beta)); ``detailed-balance``:
        ``S = eta (H^-1 C + C H^-1) / (4 (1 - beta))``, the symmetric part of
        ``(eta / 2) H^-1 C / (1 - beta)``, equal to the continuum solution iff
        [H, C] = 0; ``discrete``: docs/theory.md §3b; ``anticorrelated``: 3e with
        ``M = epoch_length`` batches per epoch (``M = 1`` is white noise).
    epoch_length : int
        M, for ``anticorrelated`` only.
    """
    eps = lr * lam
    ei, ej = eps[:, None], eps[None, :]
    if method == "continuum":
        return lr * noise_cov / ((1 - momentum) * (lam[:, None] + lam[None, :]))
    if method == "detailed-balance":
        return lr * noise_cov * (1 / lam[:, None] + 1 / lam[None, :]) / (4 * (1 - momentum))
    if method == "discrete" or epoch_length == 1:
        return lr**2 * noise_cov * white_green(ei, ej, momentum)
    _, A2 = epoch_sums(eps, momentum, epoch_length)
    w = A2[:, 0, :] / (epoch_length * (epoch_length - 1))
    return lr**2 * noise_cov * epoch_green(ei, ej, w[:, None, :], w[None, :, :], momentum)


def quadratic_stationary_covariance(
    hessian: np.ndarray,
    noise_cov: np.ndarray,
    lr: float,
    momentum: float = 0.0,
    method: str = "discrete",
    batches_per_epoch: int = 1,
) -> np.ndarray:
    """Stationary covariance of theta - theta* for SGD on a quadratic loss with given noise.

    The loss is ``(1/2) delta^T H delta`` and the gradient noise has one-step
    covariance ``C`` independent of the state (docs/theory.md §3a, §3b, §3e); see
    :func:`eigenbasis_covariance` for the equation each ``method`` solves.  The
    equations are solved in closed form in the eigenbasis of H, at the cost of one
    symmetric eigen-decomposition.

    Parameters
    ----------
    hessian : array (n, n)
        Symmetric positive semi-definite H.
    noise_cov : array (n, n)
        Symmetric one-step noise covariance C.
    lr : float
        eta > 0, below the stability limit ``2 (1 + momentum) / lambda_max``.
    momentum : float
        beta in [0, 1).
    method : {"continuum", "discrete", "detailed-balance", "anticorrelated"}
    batches_per_epoch : int
        M >= 1 for ``anticorrelated`` (kernel of Kuehn & Rosenow eq. 2).

    Returns
    -------
    ndarray (n, n)
        Where H is singular, the covariance of the projection of delta onto
        range(H): flat directions feel no restoring force (noise there makes delta
        diffuse without bound), and in the eigenbasis they decouple from the rest.
        Rows and columns along the null space are zero.

    Raises
    ------
    UsageError
        For a non-square or mismatched input, a negative eigenvalue of H, lr or
        momentum out of range, or an unknown method.
    """
    H = np.asarray(hessian, dtype=np.float64)
    C = np.asarray(noise_cov, dtype=np.float64)
    if H.ndim != 2 or H.shape[0] != H.shape[1] or C.shape != H.shape:
        raise UsageError(
            f"hessian and noise_cov must be square matrices of one shape; got {H.shape} and {C.shape}"
        )
    if method not in QUADRATIC_METHODS:
        raise UsageError(f"method must be one of {', '.join(QUADRATIC_METHODS)}; got {method!r}")
    check_int("batches_per_epoch", batches_per_epoch, 1)
    check_positive("lr", lr)
    check_momentum(momentum)
    lam, V = range_eigenbasis((H + H.T) / 2)
    if lam.size:
        check_stable(lr, lam[-1], momentum)
    S = eigenbasis_covariance(lam, V.T @ ((C + C.T) / 2) @ V, lr, momentum, method, int(batches_per_epoch))
    return to_original_basis(V, S)
