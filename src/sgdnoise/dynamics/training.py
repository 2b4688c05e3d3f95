r"""Training a ``torch.nn.Module`` with a mini-batch sampler, and recording its fluctuations.

:func:`train` runs any torch optimizer -- for the experiments of Kühn & Rosenow
(arXiv 2306.05300) heavy-ball SGD, ``torch.optim.SGD(lr=eta, momentum=beta)``, which is
docs/theory.md §1's :math:`v_k = \beta v_{k-1} - \eta g_k`, :math:`\theta_k = \theta_{k-1} + v_k`
at constant :math:`\eta` -- on batches chosen by a :class:`~sgdnoise.sampling.Sampler`
used as the ``batch_sampler`` of a ``DataLoader``.  It supports a learning-rate schedule,
checkpoints that resume to the same numbers, a progress bar, and stops (keeping what it has)
when the loss stops being finite or when the run is asked to stop (Ctrl-C, SIGTERM:
:func:`sgdnoise.interrupts.stop_requested`, asked after every step).

What is recorded at each step is up to the ``recorder`` (see
:class:`sgdnoise.measure.recorder.ProjectedFluctuations`).
"""
from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from sgdnoise.errors import UsageError
from sgdnoise.interrupts import stop_requested
from sgdnoise.sampling import Sampler
from sgdnoise.problems.networks import flat_parameters
from sgdnoise.progress import progress_bar


class Recorder(Protocol):
    """What :func:`train` feeds after every recorded step (e.g. :class:`sgdnoise.measure.recorder.ProjectedFluctuations`)."""

    def update(self, theta: torch.Tensor) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class _TensorRows(TensorDataset):
    """A TensorDataset whose batches are gathered in one indexing operation."""

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, ...]:
        index = torch.as_tensor(indices)
        return tuple(t[index] for t in self.tensors)


def _loader(data: Dataset | tuple[torch.Tensor, torch.Tensor], sampler: Sampler, steps: int) -> DataLoader:
    batches = sampler.torch_batch_sampler(steps)
    if isinstance(data, Dataset):
        return DataLoader(data, batch_sampler=batches)
    return DataLoader(_TensorRows(*data), batch_sampler=batches, collate_fn=lambda batch: batch)


@dataclass
class TrainingLog:
    """What a call of :func:`train` did.

    Attributes
    ----------
    steps : int
        Steps completed (fewer than asked when the loss diverged).
    epoch_losses : list of float
        Mean mini-batch loss of each block of ``sampler.epoch_length`` steps.
    diverged : bool
        The loss became non-finite; training stopped at the step before.
    running_loss : float
        Sum of the losses since the last complete block.
    interrupted : bool
        A stop was requested (:func:`sgdnoise.interrupts.stop_requested`); training stopped
        after ``steps`` steps.  The checkpoint keeps the last complete stretch, from which a
        rerun resumes to the same numbers.
    resumed_from : int or None
        Steps already done in the checkpoint this call resumed from (None: started afresh).
    """

    steps: int = 0
    epoch_losses: list[float] = field(default_factory=list)
    diverged: bool = False
    running_loss: float = 0.0
    interrupted: bool = False
    resumed_from: int | None = None


def train(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    data: Dataset | tuple[torch.Tensor, torch.Tensor],
    sampler: Sampler,
    steps: int,
    optimizer: torch.optim.Optimizer,
    *,
    schedule: Callable[[int], float] | None = None,
    recorder: Recorder | None = None,
    checkpoint: Path | str | None = None,
    checkpoint_every: int = 0,
    progress: bool = True,
    desc: str = "train",
) -> TrainingLog:
    """Run ``steps`` optimizer steps on batches drawn by ``sampler``.

    Parameters
    ----------
    model, loss_fn
        The network (trained in train mode) and the mean loss of a batch.
    data : Dataset or (X, y)
        Training set; ``sampler.n_examples`` must equal its length.
    sampler : Sampler
        Chooses the batches (replica 0); epoch-based samplers continue their epoch across calls.
    steps : int
        Number of steps.
    optimizer : torch.optim.Optimizer
        Over ``model``'s parameters (e.g. ``torch.optim.SGD(..., momentum=beta)`` or a noise
        injector of :mod:`sgdnoise.dynamics.injection`).
    schedule : callable, optional
        ``schedule(t)`` is the learning rate of step ``t`` (0-based, within this call).
    recorder : Recorder, optional
        Updated with the weights after every step.
    checkpoint : path, optional
        File for checkpoints (model, optimizer, sampler, recorder, log).  When it exists at the
        start, training resumes from it and gives the same numbers as an uninterrupted run with
        the same ``checkpoint_every``.
    checkpoint_every : int
        Write a checkpoint every this many steps (and at the end); 0: only at the end.  The
        batches are drawn per stretch between checkpoints.
    progress : bool
        Show a progress bar.
    desc : str
        Label of the progress bar.
    """
    n_data = len(data) if isinstance(data, Dataset) else len(data[0])
    if n_data != sampler.n_examples:
        raise UsageError(f"the sampler draws from {sampler.n_examples} examples but the data hold {n_data}")
    if steps < 0 or checkpoint_every < 0:
        raise UsageError(f"steps and checkpoint_every must be non-negative; got {steps}, {checkpoint_every}")
    path = Path(checkpoint) if checkpoint is not None else None
    log = TrainingLog()
    if path is not None and path.is_file():
        state = torch.load(path, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if recorder is not None:
            recorder.load_state_dict(state["recorder"])
        vars(sampler).update(copy.deepcopy(state["sampler"]).__dict__)
        log = state["log"]
        log.interrupted, log.resumed_from = False, log.steps  # logs of older checkpoints lack them

    def save() -> None:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "recorder": recorder.state_dict() if recorder is not None else None,
                        "sampler": sampler, "log": log}, path)

    M = sampler.epoch_length
    segment = checkpoint_every or max(steps, 1)
    model.train()
    bar = progress_bar(progress, total=steps, initial=log.steps, desc=desc, unit="step")
    try:
        while log.steps < steps and not log.diverged and not log.interrupted:
            # one batch sampler per segment between checkpoints: at a checkpoint the sampler has
            # drawn exactly the batches used, so a resumed run draws the same batches
            n = min(segment - log.steps % segment, steps - log.steps)
            for X, y in _loader(data, sampler, n):
                if stop_requested():
                    log.interrupted = True
                    break
                if schedule is not None:
                    for group in optimizer.param_groups:
                        group["lr"] = schedule(log.steps)
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(model(X), y)
                value = float(loss.detach())
                if not math.isfinite(value):
                    log.diverged = True
                    break
                loss.backward()
                optimizer.step()
                if recorder is not None:
                    recorder.update(flat_parameters(model))
                log.steps += 1
                log.running_loss += value
                if log.steps % M == 0:
                    log.epoch_losses.append(log.running_loss / M)
                    log.running_loss = 0.0
                    bar.set_postfix(loss=f"{log.epoch_losses[-1]:.4g}")
                bar.update(1)
            if not log.diverged and not log.interrupted and log.steps < steps:
                save()
    finally:
        bar.close()
    if not log.interrupted:  # mid-stretch the sampler has drawn ahead: keep the last checkpoint
        save()
    return log
