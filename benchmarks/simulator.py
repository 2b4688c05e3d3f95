"""Replica-steps per second: the vectorised simulator vs the loop a researcher would write.

Linear teacher-student regression, N = 100, P = 1000, S = 10, R = 64,
with-replacement sampling, plain SGD; both measured in this run, on the same
machine, after a warm-up (numba compilation excluded).  Prints one JSON line.
"""
from __future__ import annotations

import json
import time

import numpy as np

from sgdnoise.dynamics.simulator import SimulationConfig, simulate
from sgdnoise.problems.linear import LinearRegression

N, P, S, R, LR = 100, 1000, 10, 64, 0.1


def plain_loop(problem: LinearRegression, steps: int, seed: int = 0) -> float:
    """One replica, one NumPy step at a time; returns steps per second."""
    rng = np.random.default_rng(seed)
    X, y = problem.X, problem.Y[:, 0]
    w = problem.minimiser[:, 0].copy()
    start = time.perf_counter()
    for _ in range(steps):
        batch = rng.integers(0, P, size=S)
        xb = X[batch]
        w -= LR * xb.T @ (xb @ w - y[batch]) / S
    return steps / (time.perf_counter() - start)


def vectorised(problem: LinearRegression, steps: int) -> float:
    """R replicas in the simulator, with its streaming statistics; replica-steps per second."""
    config = SimulationConfig(lr=LR, batch_size=S, steps=steps, burn_in=0, replicas=R, seed=1)
    simulate(problem, SimulationConfig(**{**config.__dict__, "steps": 100}), progress=False)  # compile
    start = time.perf_counter()
    simulate(problem, config, progress=False)
    return R * steps / (time.perf_counter() - start)


def main() -> None:
    problem = LinearRegression.teacher_student(N, P, 0.25, seed=0)
    plain = max(plain_loop(problem, 20_000, seed) for seed in range(3))
    fast = max(vectorised(problem, 20_000) for _ in range(3))
    print(json.dumps({"benchmark": "simulator", "N": N, "P": P, "S": S, "R": R,
                      "vectorised_replica_steps_per_s": round(fast),
                      "plain_loop_steps_per_s": round(plain), "ratio": round(fast / plain, 1)}))


if __name__ == "__main__":
    main()
