"""Noise-averaged relaxation of SGD on linear regression: first and second moments over time.

docs/theory.md §3c derives a linear, closed recursion for the second moments of
``delta = w - w*`` under SGD with independent steps and solves it for its fixed
point.  Here the same recursion is iterated from an initial condition instead
(Gross, Raulf & Räth, arXiv 2311.14120, Fig. 4: the mean relaxation of the modes
z_k and of the loss).  The paper's equation for <z_k(t)> (their eq_LR_modes_dyn)
is not available to us, only the caption; what we implement is derived here
(derived for sgdnoise, checked against simulation in tests/gross/test_theory_gross.py).

In the eigenbasis of H (``H = V Lambda V^T``, rotated inputs ``Z = X V``,
residuals ``r = X w* - y``), with ``m_t = E delta_t``, ``M_t = E delta_t delta_t^T``,
``D = I - eta Lambda`` and f the batch factor of docs/theory.md §2::

    m_{t+1} = D m_t
    M_{t+1} = D M_t D + eta^2 f [ (1/P) sum_mu z_mu z_mu^T q_mu(t) - Lambda M_t Lambda ],
    q_mu(t) = z_mu^T M_t z_mu + 2 r_mu z_mu . m_t + r_mu^2 .

It is exact for ``with-replacement`` and ``random-batch`` sampling without
momentum: the mean gradient at w is ``H delta`` (``X^T r = 0``) and the batch
noise has conditional covariance ``f Sigma_1(delta)`` (docs/theory.md §2); unlike
the stationary case of §3c the cross term ``2 r_mu z_mu . m_t`` does not vanish
while the mean relaxes.  The loss is ``L = L_min + 1/2 delta^T H delta`` exactly,
so ``E L(t) = L_min + 1/2 tr(Lambda M_t)`` with ``L_min = |r|^2 / (2P)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sgdnoise.errors import UsageError
from sgdnoise.interrupts import stop_requested
from sgdnoise.problems.linear import least_squares_minimiser
from sgdnoise.theory.exact import EXACT_SAMPLINGS
from sgdnoise.theory.lyapunov import check_stable
from sgdnoise.theory.noise import batch_noise_factor


@dataclass
class MomentTrajectory:
    """Noise-averaged moments of SGD at the requested steps (eigenbasis of H, ascending eigenvalues).

    Attributes
    ----------
    times : (T,) int
        Steps t at which the moments are given (t = 0 is the initial condition).
    eigenvalues : (r,)
        Positive eigenvalues of H.
    eigenvectors : (N, r)
        Their eigenvectors V (columns).
    mean : (T, r)
        ``E z(t) - z*`` with ``z = V^T w``: the mean of ``V^T delta_t``.
    second_diagonal : (T, r)
        Diagonal of ``M_t = E[(V^T delta)(V^T delta)^T]``.
    loss : (T,)
        ``E L(t)``.
    loss_minimum : float
        ``L_min = L(w*) = |r|^2 / (2P)``.
    """

    times: np.ndarray
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    mean: np.ndarray
    second_diagonal: np.ndarray
    loss: np.ndarray
    loss_minimum: float

    @property
    def variance(self) -> np.ndarray:
        """Var z_k(t) = M_t,kk - m_t,k^2, shape (T, r): the spread of a single run around the mean."""
        return self.second_diagonal - self.mean**2


def averaged_noise_covariance(X: np.ndarray, y: np.ndarray, second_moment: np.ndarray, batch_size: int,
                              sampling: str = "with-replacement",
                              mean: np.ndarray | None = None) -> np.ndarray:
    """Batch-noise covariance averaged over weights with ``E delta = mean``, ``E delta delta^T = second_moment``.

    ``E C(delta) = f [ (1/P) sum_mu x_mu x_mu^T (x_mu^T M x_mu + 2 r_mu x_mu . m + r_mu^2) - H M H ]``
    (docs/theory.md §2 and §3c; one output).  It is linear in (m, M), so it equals the mean of
    :func:`sgdnoise.theory.noise.noise_covariance` over any weights with these moments.

    Parameters
    ----------
    X : (P, N)
    y : (P,) or (P, 1)
    second_moment : (N, N)
        M = E[delta delta^T] in weight coordinates (not the covariance, unless the mean is zero).
    batch_size : int
    sampling : str
    mean : (N,), optional
        m = E delta; default zero (the stationary state).
    """
    X = np.asarray(X, np.float64)
    Y = np.asarray(y, np.float64).reshape(X.shape[0], -1)
    if Y.shape[1] != 1:
        raise UsageError(f"averaged_noise_covariance takes one output; got {Y.shape[1]}")
    P = X.shape[0]
    r = (X @ least_squares_minimiser(X, Y) - Y)[:, 0]
    m = np.zeros(X.shape[1]) if mean is None else np.asarray(mean, np.float64)
    q = np.einsum("pi,ij,pj->p", X, second_moment, X) + 2 * r * (X @ m) + r**2
    H = X.T @ X / P
    return batch_noise_factor(sampling, P, batch_size) * ((X * q[:, None]).T @ X / P - H @ second_moment @ H)


def moment_trajectory(X: np.ndarray, y: np.ndarray, lr: float, batch_size: int, w0: np.ndarray,
                      times: np.ndarray, sampling: str = "with-replacement",
                      initial_covariance: np.ndarray | None = None) -> MomentTrajectory:
    """Iterate the exact first/second-moment recursion of SGD on linear regression from ``w0``.

    Parameters
    ----------
    X : (P, N)
    y : (P,) or (P, 1)
    lr : float
        eta, below the stability limit 2 / lambda_max.
    batch_size : int
        S.
    w0 : (N,)
        Initial weights (mean of the start).
    times : (T,) int
        Steps at which to record, ascending, >= 0.
    sampling : {"with-replacement", "random-batch"}
        Independent steps; the recursion is exact for both (docs/theory.md §3c).
    initial_covariance : (N, N), optional
        Covariance of the start around ``w0``; default zero (a deterministic start).

    Returns
    -------
    MomentTrajectory
        On range(H); components of delta in the null space of H keep their initial value.
        If a stop is requested the trajectory ends at the last step reached.
    """
    X = np.asarray(X, np.float64)
    Y = np.asarray(y, np.float64).reshape(X.shape[0], -1)
    times = np.asarray(times, dtype=np.int64)
    if Y.shape[1] != 1:
        raise UsageError(f"moment_trajectory takes one output; got {Y.shape[1]}")
    if sampling not in EXACT_SAMPLINGS:
        raise UsageError(f"sampling must be one of {', '.join(EXACT_SAMPLINGS)} (independent steps); "
                         f"got {sampling!r}", name="sampling")
    if times.ndim != 1 or np.any(np.diff(times) < 0) or (times.size and times[0] < 0):
        raise UsageError("times must be ascending and >= 0", name="times")
    P = X.shape[0]
    U, s, Vt = np.linalg.svd(X, full_matrices=False)
    rank = int(np.sum(s > s[0] * max(X.shape) * np.finfo(np.float64).eps))
    V, lam = Vt[:rank].T, s[:rank] ** 2 / P
    check_stable(lam[0], lr, 0.0)  # s descending: lam[0] is the largest
    Z = X @ V
    w_star = least_squares_minimiser(X, Y)[:, 0]
    r = X @ w_star - Y[:, 0]
    f = batch_noise_factor(sampling, P, batch_size)
    m = V.T @ (np.asarray(w0, np.float64) - w_star)
    M = np.outer(m, m) + (V.T @ initial_covariance @ V if initial_covariance is not None else 0.0)
    D = 1 - lr * lam
    rec_mean, rec_diag, rec_loss = [], [], []
    t = 0
    for target in times:
        while t < target:
            if stop_requested():
                break
            q = np.einsum("pi,ij,pj->p", Z, M, Z) + 2 * r * (Z @ m) + r**2
            M = D[:, None] * M * D[None, :] + lr**2 * f * ((Z * q[:, None]).T @ Z / P
                                                           - lam[:, None] * M * lam[None, :])
            M = (M + M.T) / 2
            m = D * m
            t += 1
        if t < target:
            break
        rec_mean.append(m.copy())
        rec_diag.append(np.diag(M).copy())
        rec_loss.append(0.5 * float(lam @ np.diag(M)))
    loss_min = float(r @ r) / (2 * P)
    n = len(rec_loss)
    order = np.arange(rank)[::-1]  # ascending eigenvalues, like the simulator
    return MomentTrajectory(times[:n], lam[order], V[:, order], np.array(rec_mean).reshape(n, rank)[:, order],
                            np.array(rec_diag).reshape(n, rank)[:, order], loss_min + np.array(rec_loss),
                            loss_min)
