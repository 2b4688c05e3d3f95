"""The engines that advance SGD replicas through a chunk of steps (numba kernel or PyTorch).

An engine is a callable ``engine(idx, theta, vel, record, theta_rows, every,
phase, store_vel) -> ChunkOutput``: it applies the steps of the batch indices
``idx`` (steps, R, S) to the replicas' states ``theta``, ``vel`` (R, K, N) in
place, in the Hessian eigenbasis, and returns the chunk's sums (and, when asked,
thinned states) for the streaming statistics of the simulator.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sgdnoise.dynamics import kernels
from sgdnoise.problems.linear import QuadraticProblem


@dataclass
class ChunkOutput:
    """What a backend returns for one chunk: sums over its steps, and optional states."""

    bad_step: int | None
    s1: np.ndarray
    s2: np.ndarray
    u1: np.ndarray
    u2: np.ndarray
    theta_buf: np.ndarray
    vel_buf: np.ndarray


Engine = Callable[..., ChunkOutput]


def problem_arrays(problem: QuadraticProblem) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(kind, Z, residuals, eigenvalues, offsets) in the eigenbasis, kernel layout."""
    if problem.kind == "linear":
        Z = np.ascontiguousarray(problem.eigen_features)
        return 0, Z, np.ascontiguousarray(problem.residuals), problem.feature_eigenvalues, np.zeros((1, 1, 1))
    offsets = np.ascontiguousarray(problem.centred_offsets[:, None, :])  # (P, 1, d)
    return 1, np.zeros((1, 1)), np.zeros((1, 1)), np.ascontiguousarray(problem.eigenvalues), offsets


def numpy_engine(problem: QuadraticProblem, lr: float, momentum: float) -> Engine:
    """The numba-compiled engine (:func:`sgdnoise.dynamics.kernels.advance`; replicas in parallel)."""
    kind, Z, resid, lam, offsets = problem_arrays(problem)

    def engine(idx: np.ndarray, theta: np.ndarray, vel: np.ndarray, record: bool,
                     theta_rows: int, every: int, phase: int, store_vel: bool) -> ChunkOutput:
        R, K, N = theta.shape
        sums = [np.zeros_like(theta) for _ in range(4)]
        theta_buf = np.empty((theta_rows, R, K, N))
        vel_buf = np.empty((idx.shape[0] if store_vel else 0, R, K, N))
        bad = kernels.advance(kind, Z, resid, lam, offsets, idx, lr, momentum,
                              theta, vel, *sums, theta_buf, every, phase, vel_buf, record)
        bad_step = int(bad[bad >= 0].min()) if np.any(bad >= 0) else None
        return ChunkOutput(bad_step, *sums, theta_buf, vel_buf)

    return engine

