"""Exact finite-lr stationary covariance (docs/theory.md §3c) against scipy's continuous Lyapunov solver.

Gaussian teacher-student data at N = 500, P = 1000 (x ~ N(0, I/N), y = u.x + eps,
sigma_eps^2 = 0.25), lr = 0.1, S = 10.  Times ``stationary_covariance(...,
method="exact")`` from the raw data (SVD, noise covariance, GMRES, rotation back)
and ``scipy.linalg.solve_continuous_lyapunov`` on the same N (H and C given),
alternating the two in each round (the machine is shared) and keeping each one's
best round.  Prints one JSON line
``{"exact_s", "lyapunov_s", "ratio"}``; the target is ratio <= 10.

With ``--epoch`` it also rates method ``epoch``, the usage-correlation closure
(``theory.epoch_closure.closure_moments``, docs/theory.md §3g), against the same Lyapunov solve.
At N = 500, P = 1000, S = 10 the closure cannot run here (its D_mu stack alone is
8 P (2N+1)^2 = 8 GB, and ~2 P^2 N^2 flops per step), so it times one epoch pass at the demo
size (N = 100, P = 200, S = 10, beta = 0.9, lr = 1), scales it with the closure's cost model
(P^2 N^2 per step, M steps per pass, ``PASSES`` passes) to N = 500, P = 1000, and adds
``epoch_pass_demo_s``, ``epoch_estimated_s``, ``epoch_ratio_estimated`` (issue 10 target:
<= 50; the estimate is some 10^5 times above it) and ``epoch_stack_gb``, the size of the D_mu
stack at N = 500 that every step must read and write (docs/theory.md §3g: no implementation
of this representation can reach 50 x).
"""
from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable

import numpy as np
from scipy.linalg import solve_continuous_lyapunov

from sgdnoise.theory import noise_covariance, stationary_covariance

N, P, LR, S, NOISE_VAR, ROUNDS = 500, 1000, 0.1, 10, 0.25, 5


def seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def epoch_rating(lyapunov_s: float) -> dict[str, float]:
    """One closure epoch pass at the demo size, scaled by the cost model to N = 500, P = 1000."""
    from sgdnoise.problems.linear import LinearRegression
    from sgdnoise.theory.epoch_closure import PASSES, ClosureEpoch
    from sgdnoise.theory.regression_basis import _eigenbasis

    n_demo, p_demo, s_demo = 100, 200, 10
    pr = LinearRegression.teacher_student(n_demo, p_demo, 0.25, seed=0)
    basis = _eigenbasis(pr.X, pr.Y)
    r = (basis.Z @ basis.w - pr.Y)[:, 0]
    epoch = ClosureEpoch(basis.Z, r, basis.lam, 1.0, 0.9, s_demo)
    m0 = np.eye(epoch.D) * 1e-3
    pass_s = seconds(lambda: epoch.epoch(m0))
    scale = (P // S) / (p_demo // s_demo) * (P / p_demo) ** 2 * (N / n_demo) ** 2
    estimated = PASSES * pass_s * scale
    return {"epoch_pass_demo_s": round(pass_s, 3), "epoch_estimated_s": round(estimated, 0),
            "epoch_ratio_estimated": round(estimated / lyapunov_s, 0),
            "epoch_stack_gb": round(8 * P * (2 * N + 1) ** 2 / 1e9, 1)}


def main() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(scale=np.sqrt(1 / N), size=(P, N))
    y = X @ rng.normal(size=N) + np.sqrt(NOISE_VAR) * rng.normal(size=P)
    H = X.T @ X / P
    C = noise_covariance(X, y, S)
    rounds = [
        (seconds(lambda: stationary_covariance(X, y, LR, S, method="exact")),
         seconds(lambda: solve_continuous_lyapunov(H, LR * C)))
        for _ in range(ROUNDS)
    ]
    exact_s, lyapunov_s = (min(column) for column in zip(*rounds))
    out = {"exact_s": round(exact_s, 4), "lyapunov_s": round(lyapunov_s, 4),
           "ratio": round(exact_s / lyapunov_s, 3)}
    if "--epoch" in sys.argv:
        out |= epoch_rating(lyapunov_s)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
