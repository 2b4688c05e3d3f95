r"""Recording the fluctuations of any training loop along fixed directions (Hessian eigenvectors).

:class:`ProjectedFluctuations` accumulates, at every step of the late phase, the projections

.. math:: p_{k,i} = v_i^\top(\theta_k - \theta_{\rm start}), \qquad
          u_{k,i} = p_{k,i} - p_{k-1,i} = v_i^\top(\theta_k - \theta_{k-1})

on ``k`` orthonormal directions :math:`v_i` (Hessian eigenvectors) as running sums, so memory
is :math:`O(k d)` whatever the number of steps: the variances :math:`\sigma^2_{\theta,i}`,
:math:`\sigma^2_{v,i}` over the recorded window, the velocity-correlation time
:math:`\tau_i = 2\sigma^2_{\theta,i}/\sigma^2_{v,i}` (Kühn & Rosenow eq. 18), and standard
errors from batch means (the window cut into ``n_blocks`` consecutive blocks;
:class:`sgdnoise.stats.streaming.SegmentMoments`).
"""
from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import torch

from sgdnoise.errors import UsageError
from sgdnoise.stats.streaming import Estimate, SegmentMoments, ratio_estimate, segment_mean


class ProjectedFluctuations:
    r"""Streaming variances of weights and velocities along ``k`` orthonormal directions.

    Parameters
    ----------
    basis : torch.Tensor (d, k)
        Orthonormal directions :math:`v_i` (columns).
    start : torch.Tensor (d,)
        Weights :math:`\theta_{\rm start}` before the first recorded step.
    steps : int
        Number of steps that will be recorded (sets the block length of the batch means).
    n_blocks : int
        Consecutive blocks of the window whose spread gives the standard errors.
    """

    def __init__(self, basis: torch.Tensor, start: torch.Tensor, steps: int, n_blocks: int = 20) -> None:
        if basis.ndim != 2 or basis.shape[0] != start.numel():
            raise UsageError(f"basis must have shape (d, k) with d = {start.numel()}; got {tuple(basis.shape)}")
        if not 2 <= n_blocks <= steps:
            raise UsageError(f"n_blocks must be between 2 and the number of recorded steps ({steps}); "
                             f"got {n_blocks}")
        self.basis = basis.detach()
        self.start = start.detach().reshape(-1).to(basis.dtype)
        self.block_length = math.ceil(steps / n_blocks)
        n_segments = math.ceil(steps / self.block_length)
        k = basis.shape[1]
        self.theta = SegmentMoments(n_segments, (k,))
        self.velocity = SegmentMoments(n_segments, (k,))
        self.steps = 0
        self._previous = np.zeros(k)

    def update(self, theta: torch.Tensor) -> None:
        """Record the weights ``theta`` (flat, shape ``(d,)``) after one more step."""
        p = (self.basis.T @ (theta.reshape(-1).to(self.basis.dtype) - self.start)).double().cpu().numpy()
        u = p - self._previous
        block = min(self.steps // self.block_length, len(self.theta.count) - 1)
        self.theta.add(block, p, p * p, 1)
        self.velocity.add(block, u, u * u, 1)
        self._previous = p
        self.steps += 1

    def result(self) -> dict[str, Estimate | int]:
        """Estimates (value and standard error, per direction) of ``var_theta``, ``var_v``,
        ``tau`` = 2 var_theta / var_v and the mean displacement ``mean_theta``; and ``steps``."""
        if self.steps < 2:
            raise UsageError(f"at least 2 recorded steps are needed; got {self.steps}")
        theta_blocks, velocity_blocks = self.theta.segment_variances(), self.velocity.segment_variances()
        return {
            "var_theta": segment_mean(theta_blocks), "var_v": segment_mean(velocity_blocks),
            "tau": ratio_estimate(theta_blocks, velocity_blocks, scale=2.0),
            "mean_theta": self.theta.mean(), "steps": self.steps,
        }

    def state_dict(self) -> dict[str, Any]:
        return copy.deepcopy({"theta": self.theta, "velocity": self.velocity, "steps": self.steps,
                              "previous": self._previous})

    def load_state_dict(self, state: dict[str, Any]) -> None:
        state = copy.deepcopy(state)
        self.theta, self.velocity = state["theta"], state["velocity"]
        self.steps, self._previous = state["steps"], state["previous"]
