r"""``sgdnoise net``: Hessian eigenbasis, gradient noise and fluctuations of a real network.

The experiment of Kühn & Rosenow (arXiv 2306.05300, Figs. 17-24) on a PyTorch model
(docs/net.md):

1. **problem** -- a built-in model and a local data set, every setting checked before any
   training (:func:`~sgdnoise.experiments.net.session.open_session`);
2. **pre-training** -- SGD with momentum, ``pretrain_epochs`` epochs from ``pretrain_lr`` to
   ``lr`` (``schedule``), epoch sampling;
3. **measurement at the pre-trained point** -- top-``k`` Hessian eigenpairs, projected
   per-example noise covariance, trace and spectral density
   (:mod:`~sgdnoise.experiments.net.curvature_step`, docs/theory.md §9);
4. **per sampler** -- noise autocorrelation, Kühn-Rosenow prediction (docs/theory.md §3d) and
   the late phase from the same point (:mod:`~sgdnoise.experiments.net.late_phase`);
5. **crossover** -- Var theta of epoch over with-replacement sampling below and above
   :math:`\lambda_{\rm cross} = 3(1-\beta)S/(\eta P)`;
6. **generalisation** -- test accuracy of ``accuracy_seeds`` complete trainings per sampler.

Every random choice comes from a named stream of ``seed`` (:func:`sgdnoise._spec.rng`):
``data`` (split, subset), ``init`` (weights), ``pretrain``, ``lanczos``, ``hutchinson``,
``slq``, ``noise``/SAMPLING, ``late-phase``/SAMPLING, ``accuracy``/i/... .
"""
from __future__ import annotations

import copy
import time
from dataclasses import replace as _replace
from pathlib import Path

import numpy as np

from sgdnoise.experiments.net.config import NetConfig
from sgdnoise.experiments.net.curvature_step import measure_curvature
from sgdnoise.experiments.net.late_phase import crossover, run_sampler
from sgdnoise.experiments.net.result import Accuracy, NetResult, Pretrain, SamplerResult
from sgdnoise.experiments.net.session import Session, open_session
from sgdnoise.interrupts import announce_phase, stop_requested
from sgdnoise.stats.streaming import segment_mean


def generalisation(session: Session) -> dict[str, Accuracy]:
    """Test accuracy after complete trainings (pre-training and late phase) with each sampler.

    Run ``i`` starts every sampler from the same initial weights (stream ``accuracy``/i/``init``);
    the batches come from ``accuracy``/i/SAMPLING/``pretrain`` and ``.../late-phase``.  A run
    stopped by a stop request (or diverged) is not counted, and no further run starts.
    """
    s, c = session, session.config
    announce_phase("accuracy")
    accuracies: dict[str, list[float]] = {sampling: [] for sampling in c.sampling}
    for i in range(c.accuracy_seeds):
        for sampling in c.sampling:
            if stop_requested():
                s.stop(f"during accuracy run {i + 1} ({sampling}), before it started")
                break
            s.new_model("accuracy", i, "init")
            s.pretrain(sampling, ("accuracy", i, sampling, "pretrain"), None, f"accuracy run {i + 1}: ")
            if not s.stopped:
                sampler = s.sampler(sampling, "accuracy", i, sampling, "late-phase")
                s.train(f"accuracy run {i + 1}: late phase ({sampling})", sampler, s.optimizer(c.lr),
                        c.burn_in_epochs + c.epochs, None)
            if s.stopped:
                break
            accuracies[sampling].append(s.accuracies()[1])
        if s.stopped:
            break
    result = {}
    for sampling, values in accuracies.items():
        a = np.asarray(values)
        est = segment_mean(a) if a.size else None  # stderr NaN (null in JSON) for one seed
        result[sampling] = Accuracy(a, None if est is None else float(est.value),
                                    None if est is None else float(est.stderr))
    return result


def _measure_samplers(session: Session, result: NetResult) -> NetResult:
    """Curvature at the pre-trained point, then each sampler until one stops recording."""
    start_state = copy.deepcopy(session.model.state_dict())
    eigenbasis = measure_curvature(session)
    if eigenbasis is None:
        return result
    samplers: dict[str, SamplerResult] = {}
    for sampling in session.config.sampling:
        samplers[sampling] = run_sampler(session, sampling, eigenbasis, start_state)
        if session.stopped:
            break
    result = _replace(result, curvature=eigenbasis.curvature, samplers=samplers)
    measured = result.fluctuations()
    if len(measured) == len(session.config.sampling) and {"epoch", "with-replacement"} <= set(measured):
        theory = {k: r.theory for k, r in samplers.items()}
        result = _replace(result, crossover=crossover(eigenbasis.curvature.eigenvalues, result.lambda_cross,
                                                      measured, theory))
    return result


def run(config: NetConfig, progress: bool = True, checkpoints: Path | None = None) -> NetResult:
    """Run the whole experiment (module docstring).

    Parameters
    ----------
    config : NetConfig
    progress : bool
        Progress bars on the terminal.
    checkpoints : path, optional
        Folder of the checkpoints: a rerun with the same settings resumes from them (the same
        numbers as an uninterrupted run); one with other settings is refused.  None: no checkpoints.

    Returns
    -------
    NetResult
        ``status`` says whether it completed, where the loss stopped being finite, or where a stop
        request (Ctrl-C, SIGTERM) ended it (``interrupted during ...``): the result then holds what
        was measured before, and a rerun into the same folder resumes from the checkpoints
        (``resumed_from`` says from where).

    Raises
    ------
    UsageError
        A setting that does not fit the data or the model, before any training.
    """
    wall = time.perf_counter()
    s = open_session(config, checkpoints, progress)
    with s.threads():
        return _replace(_run(s), status=s.status, resumed_from=dict(s.resumed),
                        wall_seconds=time.perf_counter() - wall)


def _run(s: Session) -> NetResult:
    """The phases of :func:`run` in ``s``; each starts only if the earlier ones completed."""
    from sgdnoise.theory import lambda_cross, tau_sgd

    c = s.config
    announce_phase("pretrain")
    log = s.pretrain("epoch", ("pretrain",), "pretrain")
    train_accuracy, test_accuracy = s.accuracies()
    result = NetResult(
        config=c, n_parameters=s.n_parameters, n_train=s.P, n_test=len(s.data.y_test), batches_per_epoch=s.M,
        lambda_cross=lambda_cross(c.lr, c.momentum, c.batch, s.P), tau_sgd=tau_sgd(c.momentum, s.M),
        pretrain=Pretrain(log.steps, list(log.epoch_losses), train_accuracy, test_accuracy))
    if not s.stopped:
        result = _measure_samplers(s, result)
    if c.accuracy_seeds and not s.stopped:
        result = _replace(result, accuracy=generalisation(s))
    return result
