"""Exact finite-lr stationary covariance (docs/theory.md §3c) against scipy's continuous Lyapunov solver.

Gaussian teacher-student data at N = 500, P = 1000 (x ~ N(0, I/N), y = u.x + eps,
sigma_eps^2 = 0.25), lr = 0.1, S = 10.  Times ``stationary_covariance(...,
method="exact")`` from the raw data (SVD, noise covariance, GMRES, rotation back)
and ``scipy.linalg.solve_continuous_lyapunov`` on the same N (H and C given),
alternating the two in each round (the machine is shared) and keeping each one's
best round.  Prints one JSON line
``{"exact_s", "lyapunov_s", "ratio"}``; the target is ratio <= 10.

With ``--epoch`` it also times method ``epoch`` (``theory.epoch.epoch_stationary_moments``,
N = 500, P = 1000, S = 10, one round) against the same Lyapunov solve and adds
``epoch_s`` and ``epoch_ratio`` (issue 10 target: <= 50; currently far above, minutes).
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
        from sgdnoise.theory.epoch import epoch_stationary_moments

        epoch_s = seconds(lambda: epoch_stationary_moments(X, y, LR, S))
        lyap_s = seconds(lambda: solve_continuous_lyapunov(H, LR * C))
        out |= {"epoch_s": round(epoch_s, 3), "epoch_ratio": round(epoch_s / lyap_s, 1)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
