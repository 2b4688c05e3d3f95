"""The compact epoch closure (docs/theory.md §3k) against scipy's continuous Lyapunov solver.

Same problem as ``benchmarks/theory.py`` (Gaussian teacher-student, N = 500, P = 1000, lr = 0.1,
S = 10, its constants imported): times
``sgdnoise.theory.epoch_compact.compact_closure_moments`` at beta = 0 and beta = 0.9 (one run
each; the solve is long) and ``scipy.linalg.solve_continuous_lyapunov(H, lr C)`` before and after
them in the same run (best of those rounds; the machine is shared).  Prints one JSON line with
the seconds, the GMRES epoch passes, the epoch steps per second and ``ratio_beta0`` /
``ratio_beta09`` (compact / Lyapunov; issue 10 target <= 50).  With ``--block`` it times the
block-diagonal-m variant (``block_diagonal=True``, docs/theory.md §3k) instead.
"""
from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
from scipy.linalg import solve_continuous_lyapunov

sys.path.insert(0, os.path.dirname(__file__))
from theory import LR, N, NOISE_VAR, P, S, seconds  # noqa: E402

from sgdnoise.theory import noise_covariance  # noqa: E402
from sgdnoise.theory import epoch_compact  # noqa: E402


def timed_solve(X: np.ndarray, y: np.ndarray, momentum: float, block: bool) -> tuple[float, int]:
    """Seconds of one compact solve and the number of epoch passes it made."""
    passes = [0]
    epoch = epoch_compact.CompactEpoch.epoch

    def counted(self, *args, **kwargs):
        passes[0] += 1
        return epoch(self, *args, **kwargs)

    epoch_compact.CompactEpoch.epoch = counted
    try:
        start = time.perf_counter()
        epoch_compact.compact_closure_moments(X, y, LR, S, momentum, block_diagonal=block)
        return time.perf_counter() - start, passes[0]
    finally:
        epoch_compact.CompactEpoch.epoch = epoch


def main() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(scale=np.sqrt(1 / N), size=(P, N))
    y = X @ rng.normal(size=N) + np.sqrt(NOISE_VAR) * rng.normal(size=P)
    H = X.T @ X / P
    C = noise_covariance(X, y, S)
    block = "--block" in sys.argv
    lyapunov = [seconds(lambda: solve_continuous_lyapunov(H, LR * C)) for _ in range(3)]
    s0, n0 = timed_solve(X, y, 0.0, block)
    lyapunov += [seconds(lambda: solve_continuous_lyapunov(H, LR * C)) for _ in range(3)]
    s9, n9 = timed_solve(X, y, 0.9, block)
    lyapunov += [seconds(lambda: solve_continuous_lyapunov(H, LR * C)) for _ in range(3)]
    ly = min(lyapunov)
    steps = P // S
    print(json.dumps({"benchmark": "epoch_compact", "block_diagonal": block, "N": N, "P": P, "S": S, "lr": LR, "lyapunov_s": round(ly, 4),
                      "compact_beta0_s": round(s0, 2), "passes_beta0": n0,
                      "compact_beta09_s": round(s9, 2), "passes_beta09": n9,
                      "steps_per_s": round((n0 + n9) * steps / (s0 + s9), 2),
                      "ratio_beta0": round(s0 / ly, 1), "ratio_beta09": round(s9 / ly, 1), "target": 50}))


if __name__ == "__main__":
    main()
