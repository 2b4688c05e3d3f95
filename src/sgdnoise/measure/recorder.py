r"""Recording the fluctuations of any training loop along fixed directions (Hessian eigenvectors).

:class:`ProjectedFluctuations` accumulates, at every step of the late phase, the projections

.. math:: p_{k,i} = v_i^\top(\theta_k - \theta_{\rm start}), \qquad
          u_{k,i} = p_{k,i} - p_{k-1,i} = v_i^\top(\theta_k - \theta_{k-1})

on ``k`` orthonormal directions :math:`v_i` (Hessian eigenvectors) as running sums, so memory
is :math:`O(k d)` whatever the number of steps: the variances :math:`\sigma^2_{\theta,i}`,
:math:`\sigma^2_{v,i}` over the recorded window, the velocity-correlation time
:math:`\tau_i = 2\sigma^2_{\theta,i}/\sigma^2_{v,i}` (Kühn & Rosenow eq. 18), and standard
errors from batch means (the window cut into ``n_blocks`` consecutive blocks;
:class:`sgdnoise.stats.streaming.SegmentMoments`).  With ``resolution > 0`` it also keeps the
sums that remove a linear drift, in ``n_blocks * resolution`` fine segments, for
:meth:`ProjectedFluctuations.detrended` (:mod:`sgdnoise.measure.window`).

:class:`FluctuationRecorder` is the same measurement for a training loop of one's own: it reads
the parameters of a ``torch.nn.Module`` (one call of :meth:`FluctuationRecorder.record` per
optimizer step) and returns a typed :class:`FluctuationResult`.  The Kühn-Rosenow prediction to
compare with is :func:`sgdnoise.theory.predict_fluctuations` (theory lives above measurement);
docs/api.md shows the whole workflow.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from sgdnoise.errors import UsageError
from sgdnoise.problems.networks import flat_parameters
from sgdnoise.measure.window import WindowFluctuations, window_fluctuations
from sgdnoise.stats.streaming import Estimate, SegmentMoments, ratio_estimate, segment_mean
from sgdnoise.stats.trend import TrendMoments


class ProjectedFluctuations:
    r"""Streaming variances of weights and velocities along ``k`` orthonormal directions.

    Parameters
    ----------
    basis : torch.Tensor (d, k)
        Orthonormal directions :math:`v_i` (columns).
    start : torch.Tensor (d,)
        Weights :math:`\theta_{\rm start}` before the first recorded step.
    steps : int or None
        Number of steps that will be recorded (sets the block length of the batch means,
        ``ceil(steps / n_blocks)``; steps beyond it go into the last block).  ``None`` when
        the length is not known in advance: blocks then start one step long, and whenever
        ``2 n_blocks`` blocks are full, neighbouring blocks are merged in pairs (exact: the
        running sums add) and the block length doubles.  After ``T >= n_blocks`` steps there
        are between ``n_blocks`` and ``2 n_blocks`` blocks of length a power of two (the
        last one possibly partly filled), so the standard errors always come from at least
        ``n_blocks`` blocks and the blocks grow with the window.
    n_blocks : int
        Consecutive blocks of the window whose spread gives the standard errors.
    resolution : int
        With ``steps`` known, the window is also recorded in ``n_blocks * resolution`` fine
        segments with the sums that remove a linear drift (:meth:`detrended`); 0: not.
    """

    def __init__(self, basis: torch.Tensor, start: torch.Tensor, steps: int | None,
                 n_blocks: int = 20, resolution: int = 0) -> None:
        if basis.ndim != 2 or basis.shape[0] != start.numel():
            raise UsageError(f"basis must have shape (d, k) with d = {start.numel()}; got {tuple(basis.shape)}")
        if steps is None:
            if n_blocks < 2:
                raise UsageError(f"n_blocks must be at least 2; got {n_blocks}", name="n_blocks")
            self.block_length, n_segments = 1, 2 * n_blocks
        else:
            if not 2 <= n_blocks <= steps:
                raise UsageError(f"n_blocks must be between 2 and the number of recorded steps ({steps}); "
                                 f"got {n_blocks}", name="n_blocks")
            self.block_length = math.ceil(steps / n_blocks)
            n_segments = math.ceil(steps / self.block_length)
        self.growing = steps is None
        self.basis = basis.detach()
        self.start = start.detach().reshape(-1).to(basis.dtype)
        k = basis.shape[1]
        self.theta = SegmentMoments(n_segments, (k,))
        self.velocity = SegmentMoments(n_segments, (k,))
        self.steps = 0
        self._previous = np.zeros(k)
        self.fine: tuple[TrendMoments, SegmentMoments] | None = None
        self.fine_length, self.resolution = 0, resolution
        if steps is not None and resolution > 0:
            self.fine_length = max(1, math.ceil(steps / (n_blocks * resolution)))
            n_fine = math.ceil(steps / self.fine_length)
            self.fine = (TrendMoments(n_fine, (k,)), SegmentMoments(n_fine, (k,)))

    def update(self, theta: torch.Tensor) -> None:
        """Record the weights ``theta`` (flat, shape ``(d,)``) after one more step."""
        p = (self.basis.T @ (theta.reshape(-1).to(self.basis.dtype) - self.start)).double().cpu().numpy()
        u = p - self._previous
        block = self.steps // self.block_length
        if self.growing and block == len(self.theta.count):
            for moments in (self.theta, self.velocity):
                _merge_pairs(moments)
            self.block_length *= 2
            block = self.steps // self.block_length
        block = min(block, len(self.theta.count) - 1)
        self.theta.add(block, p, p * p, 1)
        self.velocity.add(block, u, u * u, 1)
        if self.fine is not None:
            segment = min(self.steps // self.fine_length, len(self.fine[1].count) - 1)
            self.fine[0].add(segment, float(self.steps), p)
            self.fine[1].add(segment, u, u * u, 1)
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

    def detrended(self, relaxation: np.ndarray | None = None) -> WindowFluctuations:
        """Var theta about the window's least-squares line, Var v, tau, the trend, with batch-means
        errors over blocks at least one relaxation time long, the measured one or ``relaxation``
        (steps per direction) if longer (:func:`sgdnoise.measure.window.window_fluctuations`)."""
        if self.fine is None:
            raise UsageError("detrended() needs a recorder made with steps and resolution > 0")
        if self.steps < 2:
            raise UsageError(f"at least 2 recorded steps are needed; got {self.steps}")
        return window_fluctuations(*self.fine, self.fine_length, self.resolution, relaxation)

    def drift_ratio(self) -> np.ndarray:
        r"""Per direction, ``|mean of the second half - mean of the first half| / sqrt(var_theta)``.

        The halves are the first and last ``floor(n/2)`` of the ``n`` filled blocks (the middle
        block of an odd ``n`` is left out), each mean weighted by the steps in its blocks.
        Stationary fluctuations give a ratio of order :math:`\sqrt{\tau / T}` (zero in the limit
        of a long window); a steady drift gives about :math:`\sqrt 3 \approx 1.7`.
        """
        filled = self.theta.filled
        sums, counts = self.theta.sum[filled], self.theta.count[filled]
        half = len(counts) // 2
        if half == 0:
            raise UsageError(f"at least 2 recorded steps are needed; got {self.steps}")
        first = sums[:half].sum(axis=0) / counts[:half].sum()
        second = sums[-half:].sum(axis=0) / counts[-half:].sum()
        spread = np.sqrt(self.theta.segment_variances().mean(axis=0))
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.abs(second - first) / spread

    def state_dict(self) -> dict[str, Any]:
        return copy.deepcopy({"theta": self.theta, "velocity": self.velocity, "steps": self.steps,
                              "previous": self._previous, "block_length": self.block_length, "fine": self.fine})

    def load_state_dict(self, state: dict[str, Any]) -> None:
        state = copy.deepcopy(state)
        self.theta, self.velocity = state["theta"], state["velocity"]
        self.steps, self._previous = state["steps"], state["previous"]
        self.block_length = state.get("block_length", self.block_length)  # absent in older checkpoints
        if self.fine is not None and state.get("fine") is None:
            raise UsageError("the checkpoint was written by an older sgdnoise without the detrending sums; "
                             "delete the checkpoint folder and rerun")
        self.fine = state.get("fine")


def _merge_pairs(moments: SegmentMoments) -> None:
    """Merge segments (0, 1), (2, 3), ... of ``moments`` into the first half; empty the second half."""
    for name in ("sum", "sum_sq", "count"):
        values = getattr(moments, name)
        merged = values[0::2] + values[1::2]
        setattr(moments, name, np.concatenate([merged, np.zeros_like(merged)]))


@dataclass(frozen=True)
class FluctuationResult:
    r"""What :meth:`FluctuationRecorder.result` measured, per direction (column of the eigenvectors).

    Attributes
    ----------
    var_theta : Estimate
        Variance :math:`\sigma^2_{\theta,i}` of the weights along direction ``i`` over the window.
    var_v : Estimate
        Variance :math:`\sigma^2_{v,i}` of the velocity :math:`v_k = \theta_k - \theta_{k-1}`.
    tau : Estimate
        Velocity-correlation time :math:`2\sigma^2_{\theta,i}/\sigma^2_{v,i}` (Kühn & Rosenow eq. 18).
    mean_theta : Estimate
        Mean displacement :math:`\langle v_i^\top(\theta_k - \theta_{\rm start})\rangle` from the
        weights at the recorder's creation.
    drift_ratio : ndarray
        :meth:`ProjectedFluctuations.drift_ratio`: how far the mean moved between the first and
        the second half of the window, in units of the spread; near 0 for stationary directions,
        about 1.7 for a steady drift.  Directions well above a few :math:`\sqrt{\tau_i/T}` are
        not stationary: their variances measure the drift, not the noise.
    steps : int
        Recorded steps ``T``.
    block_length, n_blocks : int
        The batch means behind every ``stderr``: ``n_blocks`` consecutive blocks of
        ``block_length`` steps (the last one possibly shorter).

    Every :class:`~sgdnoise.stats.streaming.Estimate` has ``value`` and ``stderr``, arrays of
    shape ``(k,)``: the mean over the blocks of each block's value (variances about the grand
    mean), every block weighted equally, a partly filled last block included, and the standard
    error of that mean; valid when a block is much longer than :math:`\tau_i`.
    """

    var_theta: Estimate
    var_v: Estimate
    tau: Estimate
    mean_theta: Estimate
    drift_ratio: np.ndarray
    steps: int
    block_length: int
    n_blocks: int


class FluctuationRecorder:
    r"""Weight and velocity fluctuations of one's own training loop along ``k`` directions.

    Two lines in a training loop::

        recorder = FluctuationRecorder(model, eigenvectors)   # snapshot of the weights now
        for ...:
            ...; optimizer.step()
            recorder.record()                                  # once per optimizer step
        result = recorder.result()                             # a FluctuationResult

    Parameters
    ----------
    model : torch.nn.Module
        Its trainable parameters, flattened in ``model.parameters()`` order
        (:func:`sgdnoise.problems.networks.flat_parameters`), are read at creation (the
        reference :math:`\theta_{\rm start}`) and at every :meth:`record`.
    eigenvectors : torch.Tensor or ndarray (d, k)
        Orthonormal directions, e.g. the eigenvectors of :func:`sgdnoise.hessian_eigenpairs`
        (an :class:`~sgdnoise.measure.lanczos.Eigenpairs` is accepted too).  Moved to the
        parameters' device; projections are computed in its dtype.
    steps : int, optional
        Steps that will be recorded, when known: blocks of ``ceil(steps / n_blocks)`` steps,
        and recording more raises.  ``None`` (default): blocks that double in length as the
        window grows, always between ``n_blocks`` and ``2 n_blocks`` of them (see
        :class:`ProjectedFluctuations`).
    n_blocks : int
        Blocks of the batch means (standard errors), at least 2.

    Memory is two copies of the parameters and :math:`O(k)` running sums per block, whatever
    the number of steps.  :meth:`state_dict` / :meth:`load_state_dict` resume a checkpointed run.
    """

    def __init__(self, model: nn.Module, eigenvectors: Any, steps: int | None = None,
                 n_blocks: int = 20) -> None:
        if not isinstance(model, nn.Module):
            raise UsageError(f"model must be a torch.nn.Module; got {type(model).__name__}", name="model")
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 2):
            raise UsageError(f"steps must be an integer >= 2 or None; got {steps!r}", name="steps")
        if isinstance(n_blocks, bool) or not isinstance(n_blocks, (int, np.integer)) or n_blocks < 2:
            raise UsageError(f"n_blocks must be an integer >= 2; got {n_blocks!r}", name="n_blocks")
        if steps is not None and n_blocks > steps:
            raise UsageError(f"n_blocks must be <= steps = {steps}; got {n_blocks}", name="n_blocks")
        self.model = model
        start = self._parameters()
        basis = _check_basis(eigenvectors, start)
        self.target_steps = steps
        self._previous = start.clone()
        self._state = ProjectedFluctuations(basis, start, steps, n_blocks)
        self.n_blocks = n_blocks

    @property
    def steps(self) -> int:
        """Steps recorded so far."""
        return self._state.steps

    def _parameters(self) -> torch.Tensor:
        params = [p for p in self.model.parameters() if p.requires_grad]
        if not params:
            raise UsageError("model must have trainable parameters; it has none", name="model")
        return flat_parameters(self.model)

    def record(self) -> None:
        """Record the model's current parameters as one more step (call after each ``optimizer.step()``)."""
        theta = self._parameters()
        if theta.shape != self._previous.shape:
            raise UsageError(f"model has {theta.numel()} trainable parameters now, {self._previous.numel()} "
                             "when the recorder was created", name="model")
        if self.target_steps is not None and self.steps >= self.target_steps:
            raise UsageError(f"steps = {self.target_steps} were announced and all are recorded; "
                             "pass steps=None to record an open-ended window", name="steps")
        if torch.equal(theta, self._previous):
            what = "since the last record()" if self.steps else "since the recorder was created"
            raise UsageError(f"model parameters have not changed {what}: call record() once after "
                             "each optimizer.step()", name="record")
        self._state.update(theta)
        self._previous = theta

    def result(self) -> FluctuationResult:
        """The fluctuations measured so far (at least 2 recorded steps)."""
        if self.steps < 2:
            raise UsageError(f"at least 2 recorded steps are needed before result(); got {self.steps} "
                             "(call record() after each optimizer.step())", name="record")
        stats = self._state.result()
        return FluctuationResult(
            var_theta=stats["var_theta"], var_v=stats["var_v"], tau=stats["tau"],
            mean_theta=stats["mean_theta"], drift_ratio=self._state.drift_ratio(), steps=self.steps,
            block_length=self._state.block_length, n_blocks=int(self._state.theta.filled.sum()))

    def state_dict(self) -> dict[str, Any]:
        """Everything :meth:`load_state_dict` needs to continue (with the model's own checkpoint)."""
        return {"fluctuations": self._state.state_dict(), "start": self._state.start.clone(),
                "previous": self._previous.clone(), "target_steps": self.target_steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["start"].shape != self._state.start.shape:
            raise UsageError(f"state is for {state['start'].numel()} parameters; this recorder has "
                             f"{self._state.start.numel()}", name="state")
        self._state.load_state_dict(state["fluctuations"])
        self._state.start = state["start"].clone().to(self._state.start)
        self._previous = state["previous"].clone().to(self._previous)
        self.target_steps = state["target_steps"]


def _check_basis(eigenvectors: Any, start: torch.Tensor) -> torch.Tensor:
    """``eigenvectors`` as a (d, k) tensor on the parameters' device, checked for shape and orthonormality."""
    if hasattr(eigenvectors, "eigenvectors"):  # an Eigenpairs result
        eigenvectors = eigenvectors.eigenvectors
    try:
        basis = torch.as_tensor(eigenvectors).detach()
    except (TypeError, ValueError, RuntimeError) as exc:
        raise UsageError(f"eigenvectors must be a (d, k) tensor or array; got {type(eigenvectors).__name__}",
                         name="eigenvectors") from exc
    d = start.numel()
    if basis.ndim != 2 or basis.shape[0] != d or basis.shape[1] < 1:
        raise UsageError(f"eigenvectors must have shape (d, k) with d = {d} (the model's trainable "
                         f"parameters) and k >= 1; got {tuple(basis.shape)}", name="eigenvectors")
    if not basis.is_floating_point():
        basis = basis.to(torch.float64)
    basis = basis.to(start.device)
    gram = basis.T @ basis
    error = (gram - torch.eye(gram.shape[0], dtype=basis.dtype, device=basis.device)).abs().max().item()
    if not error <= torch.finfo(basis.dtype).eps ** 0.5:
        raise UsageError(f"eigenvectors must have orthonormal columns; max |V^T V - I| = {error:.3g}",
                         name="eigenvectors")
    return basis
