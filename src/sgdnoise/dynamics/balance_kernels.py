r"""Compiled inner loops of :mod:`sgdnoise.dynamics.balance_sgd` (numba): SGD and Euler-Maruyama steps.

Parameters of one replica are an array (d, D + 1); every kernel loops over replicas in
parallel threads (replicas are independent, so the numbers do not depend on the threads).
The path sums accumulated for the law of balance (docs/theory.md §6a) are, per pair ``k`` of
consecutive layers of path 0 with ``P_k = prod_{j != k, k+1} u_{0j}^2``:
columns 0-2 ``sum dt (P_k, v P_k, v^2 P_k)``, 3-5 ``sum dt^2 (P_k, v P_k, v^2 P_k)`` and
6-10 ``sum dt^2 P_k^2 v^j`` for ``j = 0..4`` (the second-order step terms).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

DIVERGED = 1e150  # |v| beyond this counts as diverged
#: Columns of the path sums (module docstring).
N_INTEGRALS = 11


@njit(cache=True)
def _output_and_gradient(th, grad):  # pragma: no cover - compiled
    """v of one replica and dv/dtheta into ``grad`` (prefix and suffix products, exact at 0)."""
    d, L = th.shape
    v = 0.0
    for i in range(d):
        pre = 1.0
        for k in range(L):
            grad[i, k] = pre
            pre *= th[i, k]
        v += pre
        suf = 1.0
        for k in range(L - 1, -1, -1):
            grad[i, k] *= suf
            suf *= th[i, k]
    return v


@njit(cache=True)
def _accumulate(th, v, dt, integrals):  # pragma: no cover - compiled
    """integrals[k] += (dt, dt^2) * (P_k, v P_k, v^2 P_k) and dt^2 P_k^2 v^(0..4) (module docstring)."""
    L = th.shape[1]
    for k in range(L - 1):
        others = 1.0
        for j in range(L):
            if j != k and j != k + 1:
                others *= th[0, j] * th[0, j]
        w = dt * others
        for power in range(3):
            integrals[k, power] += w
            integrals[k, 3 + power] += w * dt
            w *= v
        w = dt * dt * others * others
        for power in range(5):
            integrals[k, 6 + power] += w
            w *= v


@njit(parallel=True, cache=True)
def _sgd_steps(theta, xb, yb, lr, decay, alive, integrals, n_steps):  # pragma: no cover - compiled
    """``xb.shape[1]`` SGD steps of every live replica on the batches ``xb, yb`` (R, steps, S)."""
    R, steps, S = xb.shape
    d, L = theta.shape[1], theta.shape[2]
    if integrals.shape[1] < L - 1 or integrals.shape[2] != N_INTEGRALS:
        raise ValueError("integrals must have shape (R, L - 1, N_INTEGRALS)")
    for r in prange(R):
        if not alive[r]:
            continue
        th = theta[r]
        acc = integrals[r]
        grad = np.empty((d, L))
        for t in range(steps):
            v = _output_and_gradient(th, grad)
            if not (abs(v) < DIVERGED):
                alive[r] = False
                break
            _accumulate(th, v, lr, acc)
            g = 0.0
            for s in range(S):
                x = xb[r, t, s]
                g += x * (v * x - yb[r, t, s])
            g *= 2.0 / S
            for i in range(d):
                for k in range(L):
                    th[i, k] -= lr * (g * grad[i, k] + 2.0 * decay * th[i, k])
            n_steps[r] += 1


@njit(cache=True)
def _hessian_bound(th):  # pragma: no cover - compiled
    """Gershgorin bound on |Hessian of v|: max_i D * max_{k != k'} |prod_{j != k, k'} u_ij|."""
    d, L = th.shape
    if L < 2:
        return 0.0
    bound = 0.0
    for i in range(d):
        # the largest entry leaves out the two largest magnitudes of the path
        k1, k2 = -1, -1
        for k in range(L):
            a = abs(th[i, k])
            if k1 < 0 or a > abs(th[i, k1]):
                k2 = k1
                k1 = k
            elif k2 < 0 or a > abs(th[i, k2]):
                k2 = k
        entry = 1.0
        for k in range(L):
            if k != k1 and k != k2:
                entry *= abs(th[i, k])
        bound = max(bound, (L - 1) * entry)
    return bound


@njit(parallel=True, cache=True)
def _sde_steps(theta, clock, t_stop, normals, rows, a1, a2, a3, b1, b2, T, decay, tol, dt_max,
               integrals, n_steps):  # pragma: no cover - compiled
    """Advance replicas ``rows`` towards ``t_stop`` by at most ``normals.shape[0]`` steps."""
    d, L = theta.shape[1], theta.shape[2]
    if integrals.shape[1] < L - 1 or integrals.shape[2] != N_INTEGRALS:
        raise ValueError("integrals must have shape (R, L - 1, N_INTEGRALS)")
    for j in prange(rows.size):
        r = rows[j]
        th = theta[r]
        acc = integrals[r]
        grad = np.empty((d, L))
        for step in range(normals.shape[0]):
            remaining = t_stop - clock[r]
            if remaining <= 0.0:
                break
            v = _output_and_gradient(th, grad)
            g = a1 * v * v - 2.0 * a2 * v + a3
            m = 2.0 * (b1 * v - b2)
            sigma = 2.0 * math.sqrt(T * g)
            grad_sq = 0.0
            for i in range(d):
                for k in range(L):
                    grad_sq += grad[i, k] * grad[i, k]
            rho = _hessian_bound(th)
            dt = dt_max
            k_drift = 2.0 * b1 * grad_sq + rho * abs(m) + 2.0 * decay
            if k_drift * dt > tol:
                dt = tol / k_drift
            # |d sigma / dv| = 2 sqrt(T) |alpha_1 v - alpha_2| / sqrt(g)
            k_noise = 2.0 * math.sqrt(T) * abs(a1 * v - a2) / math.sqrt(g) * grad_sq + rho * sigma
            if k_noise * k_noise * dt > tol:
                dt = tol / (k_noise * k_noise)
            if dt >= remaining:
                dt = remaining
            _accumulate(th, v, dt, acc)
            coef = -m * dt + sigma * math.sqrt(dt) * normals[step, j]
            for i in range(d):
                for k in range(L):
                    th[i, k] += coef * grad[i, k] - 2.0 * decay * dt * th[i, k]
            clock[r] = t_stop if dt == remaining else clock[r] + dt
            n_steps[r] += 1
