"""Compiled inner loops of the simulator: many SGD-momentum steps for R replicas per call.

One call advances every replica through the batches ``idx`` (steps, R, S)
in the Hessian eigenbasis (``theta`` is delta = w - w* there, shape (R, K, N)):

    v_k = beta v_{k-1} - lr g_k,   theta_k = theta_{k-1} + v_k     (docs/theory.md §1)

``kind`` selects the batch gradient:

0. linear regression, ``g = (1/S) sum_{n in B} z_n (z_n . theta_k + r_{n,k})`` with
   ``Z = X V`` (P, N) and residuals ``r`` (P, K) at the minimiser;
1. additive noise, ``g = lam * (theta - (1/S) sum_{n in B} b_n)`` with ``b`` (P, K, N)
   the centred offsets and ``lam`` (N,) the Hessian eigenvalues.

Replicas are independent, so they are distributed over threads (``prange``)
and each runs its steps sequentially.  While ``record`` is true the first and
second moments of theta and v are accumulated per replica.  When non-empty,
``theta_buf`` (rows, R, K, N) receives theta after the steps
``t = phase, phase + every, ...`` of the chunk and ``vel_buf`` (steps, R, K, N)
v after every step, for the caller's chunked statistics (full covariance,
snapshots, autocovariance).
A replica whose weights become non-finite stops; its step index is returned.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

_FASTMATH = {"reassoc", "contract", "nsz", "arcp"}  # no 'nnan'/'ninf': divergence is detected


@njit(parallel=True, cache=True, fastmath=_FASTMATH)
def advance(kind, Z, resid, lam, offsets, idx, lr, beta, theta, vel,
            s1, s2, u1, u2, theta_buf, every, phase, vel_buf, record):  # pragma: no cover - compiled
    steps, R, S = idx.shape
    K, N = theta.shape[1], theta.shape[2]
    store_theta = theta_buf.shape[0] > 0
    store_vel = vel_buf.shape[0] > 0
    bad = np.full(R, -1, dtype=np.int64)
    inv_s = 1.0 / S
    for r in prange(R):
        g = np.empty((K, N))
        res = np.empty(K)
        for t in range(steps):
            g[:] = 0.0
            if kind == 0:
                for s in range(S):
                    n = idx[t, r, s]
                    for k in range(K):
                        acc = resid[n, k]
                        for i in range(N):
                            acc += Z[n, i] * theta[r, k, i]
                        res[k] = acc * inv_s
                    for k in range(K):
                        rk = res[k]
                        for i in range(N):
                            g[k, i] += Z[n, i] * rk
            else:
                for s in range(S):
                    n = idx[t, r, s]
                    for k in range(K):
                        for i in range(N):
                            g[k, i] -= offsets[n, k, i]
                for k in range(K):
                    for i in range(N):
                        g[k, i] = lam[i] * (theta[r, k, i] + g[k, i] * inv_s)
            total = 0.0
            for k in range(K):
                for i in range(N):
                    v = beta * vel[r, k, i] - lr * g[k, i]
                    vel[r, k, i] = v
                    theta[r, k, i] += v
                    total += theta[r, k, i]
            if record:
                for k in range(K):
                    for i in range(N):
                        th = theta[r, k, i]
                        v = vel[r, k, i]
                        s1[r, k, i] += th
                        s2[r, k, i] += th * th
                        u1[r, k, i] += v
                        u2[r, k, i] += v * v
            if store_theta and t >= phase and (t - phase) % every == 0:
                row = (t - phase) // every
                for k in range(K):
                    for i in range(N):
                        theta_buf[row, r, k, i] = theta[r, k, i]
            if store_vel:
                for k in range(K):
                    for i in range(N):
                        vel_buf[t, r, k, i] = vel[r, k, i]
            if not np.isfinite(total):  # a NaN or inf anywhere makes the sum non-finite
                bad[r] = t
                break
    return bad


def advance_reference(kind: int, Z, resid, lam, offsets, idx, lr: float, beta: float,
                      theta: np.ndarray, vel: np.ndarray) -> None:
    """The same dynamics as :func:`advance`, one plain NumPy step at a time (for tests).

    This is the loop a researcher would write; it shares nothing with the
    compiled kernel but the inputs.
    """
    steps, R, _ = idx.shape
    for t in range(steps):
        for r in range(R):
            batch = idx[t, r]
            if kind == 0:
                zb = Z[batch]                                     # (S, N)
                residual = zb @ theta[r].T + resid[batch]         # (S, K)
                grad = (zb.T @ residual).T / len(batch)           # (K, N)
            else:
                grad = lam * (theta[r] - offsets[batch].mean(axis=0))
            vel[r] = beta * vel[r] - lr * grad
            theta[r] += vel[r]
