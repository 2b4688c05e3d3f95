"""Exact finite-lr stationary covariance (docs/theory.md §3c) against scipy's continuous Lyapunov solver.

Gaussian teacher-student data at N = 500, P = 1000 (x ~ N(0, I/N), y = u.x + eps,
sigma_eps^2 = 0.25), lr = 0.1, S = 10.  Times ``stationary_covariance(...,
method="exact")`` from the raw data (SVD, noise covariance, GMRES, rotation back)
and ``scipy.linalg.solve_continuous_lyapunov`` on the same N (H and C given),
alternating the two in each round (the machine is shared) and keeping each one's
best round.  Prints one JSON line
``{"exact_s", "lyapunov_s", "ratio"}``; the target is ratio <= 10.

With ``--epoch`` it also times method ``epoch`` as ``sgdnoise`` runs it
(``theory.epoch_method.epoch_method_moments``, docs/theory.md §3m: here the Gaussian-moment form
§3l, since the compact closure §3k would take over 30 s, plus §3h's start correction) at N = 500,
P = 1000, S = 10, momentum 0 and 0.9, with Lyapunov rounds before, between and after them (the best
of all rounds is the reference), and adds ``epoch_beta0_s``, ``epoch_beta09_s``, the epoch passes of
each solve, the form that ran (``epoch_data_moments``) and ``epoch_ratio_beta0`` /
``epoch_ratio_beta09`` (issue 10 target: <= 50).  ``--compact`` times §3k with the start
correction instead (minutes), ``--block`` its block-diagonal variant (``block_diagonal=True``, §3k).
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


def timed_epoch_solve(X: np.ndarray, y: np.ndarray, momentum: float, variant: str) -> tuple[float, int, str]:
    """Seconds of one solve of method ``epoch`` (or of §3k alone), the epoch passes it made, the form that ran."""
    from sgdnoise.theory import epoch_closure, epoch_compact
    from sgdnoise.theory.epoch_method import epoch_method_moments

    passes = [0]
    epoch = epoch_closure.ClosureEpoch.epoch  # every closure's epoch map (§3k, §3l) inherits it

    def counted(self, *args, **kwargs):
        passes[0] += 1
        return epoch(self, *args, **kwargs)

    def compact(block: bool) -> str:
        epoch_compact.compact_closure_moments(X, y, LR, S, momentum, block_diagonal=block, start_correction=not block)
        return "empirical (block-diagonal m)" if block else "empirical"

    solve = {"method": lambda: epoch_method_moments(X, y, LR, S, momentum).data_moments,
             "compact": lambda: compact(False), "block": lambda: compact(True)}[variant]
    epoch_closure.ClosureEpoch.epoch = counted
    try:
        start = time.perf_counter()
        form = solve()
        return time.perf_counter() - start, passes[0], form
    finally:
        epoch_closure.ClosureEpoch.epoch = epoch


def epoch_rating(X: np.ndarray, y: np.ndarray, lyapunov: Callable[[], float], variant: str) -> dict[str, float]:
    """Method ``epoch`` at beta = 0 and 0.9 between Lyapunov rounds; ratios to the best round of the run."""
    rounds = [lyapunov() for _ in range(3)]
    s0, n0, form0 = timed_epoch_solve(X, y, 0.0, variant)
    rounds += [lyapunov() for _ in range(3)]
    s9, n9, form9 = timed_epoch_solve(X, y, 0.9, variant)
    rounds += [lyapunov() for _ in range(3)]
    best = min(rounds)
    return {"epoch_variant": variant, "epoch_data_moments": [form0, form9], "epoch_lyapunov_s": round(best, 4),
            "epoch_beta0_s": round(s0, 2), "epoch_passes_beta0": n0,
            "epoch_beta09_s": round(s9, 2), "epoch_passes_beta09": n9,
            "epoch_ratio_beta0": round(s0 / best, 1), "epoch_ratio_beta09": round(s9 / best, 1)}


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
        variant = "block" if "--block" in sys.argv else "compact" if "--compact" in sys.argv else "method"
        out |= epoch_rating(X, y, lambda: seconds(lambda: solve_continuous_lyapunov(H, LR * C)), variant)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
