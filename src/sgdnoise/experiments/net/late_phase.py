r"""Per sampler: the gradient noise along the eigenvectors, the Kühn-Rosenow prediction, the late phase.

For a sampler with noise factor :math:`f` (docs/theory.md §2), the one-step noise variance
along :math:`v_i` is :math:`\sigma^2_{\delta g,i} = f\sigma^2_{1,i}`; its autocorrelation by lag
is measured at the pre-trained weights with the sampler itself and held against the kernel
:math:`\kappa_h`.  The closed form of §3d with the measured :math:`\lambda_i` and
:math:`\sigma^2_{\delta g,i}` predicts :math:`\mathrm{Var}\,\theta_i`, :math:`\mathrm{Var}\,v_i`,
:math:`\tau_i`; the late phase (``burn_in_epochs``, then ``epochs`` recorded epochs at constant
``lr`` from the pre-trained weights) measures them with streaming sums
(:class:`~sgdnoise.measure.recorder.ProjectedFluctuations`, 20 batch-means blocks, §8).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from sgdnoise.experiments.net.config import RECORD_BLOCKS, NetConfig
from sgdnoise.experiments.net.curvature_step import Eigenbasis
from sgdnoise.experiments.net.result import (
    PREDICTED,
    Crossover,
    CrossoverSide,
    Fluctuations,
    LatePhase,
    SamplerResult,
)
from sgdnoise.experiments.net.session import Session


def kuehn_rosenow_curves(lam: np.ndarray, sigma2: np.ndarray, sampling: str, config: NetConfig,
                         batches_per_epoch: int) -> dict[str, np.ndarray]:
    r"""Kühn-Rosenow ``var_theta``, ``var_v``, ``tau`` per direction (docs/theory.md §3d).

    NaN where :math:`\lambda_i \le 0` or beyond the stability limit
    :math:`\eta\lambda_i \ge 2(1 + \beta)`.  Epoch sampling anti-correlates the noise over
    ``batches_per_epoch`` steps; the independent samplers over one.
    """
    from sgdnoise.theory import kuehn_rosenow

    valid = (lam > 0) & (config.lr * lam < 2 * (1 + config.momentum))
    out = {key: np.full(lam.shape, np.nan) for key in PREDICTED}
    if valid.any():
        kr = kuehn_rosenow(lam[valid], sigma2[valid], config.lr, config.momentum,
                           batches_per_epoch if sampling == "epoch" else 1)
        for key in out:
            out[key][valid] = getattr(kr, key)
    return out


def _geometric_mean(values: np.ndarray) -> float:
    return float(np.exp(np.nanmean(np.log(values))))


def crossover(lam: np.ndarray, lam_cross: float, measured: dict[str, Fluctuations],
              theory: dict[str, dict[str, np.ndarray]], numerator: str = "epoch",
              denominator: str = "with-replacement") -> Crossover:
    r"""Geometric-mean ratio of :math:`\mathrm{Var}\,\theta_i` (numerator / denominator sampler),
    measured and predicted, over the directions below and above :math:`\lambda_{\rm cross}`."""
    sides = []
    for mask in (lam < lam_cross, lam >= lam_cross):
        m = measured[numerator].var_theta.value[mask] / measured[denominator].var_theta.value[mask]
        t = theory[numerator]["var_theta"][mask] / theory[denominator]["var_theta"][mask]
        sides.append(CrossoverSide(int(mask.sum()), _geometric_mean(m) if mask.any() else None,
                                   _geometric_mean(t) if mask.any() else None))
    return Crossover(numerator, denominator, *sides)


def _late_phase(session: Session, sampling: str, start_state: dict[str, Any], basis: Any) -> LatePhase:
    """Burn-in and recorded epochs with ``sampling`` from ``start_state`` (stream ``late-phase``)."""
    from sgdnoise.measure.network_noise import PerExampleGradients, projected_covariance
    from sgdnoise.measure.recorder import ProjectedFluctuations
    from sgdnoise.problems.networks import flat_parameters

    s, c = session, session.config
    s.model.load_state_dict(start_state)
    sampler, optimizer = s.sampler(sampling, "late-phase", sampling), s.optimizer(c.lr)
    burn = s.train(f"burn-in ({sampling})", sampler, optimizer, c.burn_in_epochs, f"{sampling}-burn-in")
    if burn.diverged:
        return LatePhase(burn.steps, list(burn.epoch_losses))
    recorder = ProjectedFluctuations(basis, flat_parameters(s.model), c.epochs * s.M, RECORD_BLOCKS)
    log = s.train(f"late phase ({sampling})", sampler, optimizer, c.epochs, f"{sampling}-record", recorder=recorder)
    projections = PerExampleGradients(s.model, s.loss_fn, s.train_set).project(basis)
    fluctuations = None
    if recorder.steps >= 2:
        found = recorder.result()
        fluctuations = Fluctuations(found["var_theta"], found["var_v"], found["tau"], found["mean_theta"])
    train_accuracy, test_accuracy = s.accuracies()
    return LatePhase(burn.steps, list(burn.epoch_losses) + list(log.epoch_losses), log.steps,
                     train_accuracy, test_accuracy,
                     np.diag(projected_covariance(projections).double().cpu().numpy()), fluctuations)


def run_sampler(session: Session, sampling: str, eigenbasis: Eigenbasis, start_state: dict[str, Any]) -> SamplerResult:
    """Noise (stream ``noise``), prediction and late phase of one sampler from the pre-trained point."""
    from sgdnoise.measure.gradient_noise import noise_autocorrelation
    from sgdnoise.theory import batch_noise_factor, noise_kernel

    s, c = session, session.config
    curv = eigenbasis.curvature
    sigma2 = batch_noise_factor(sampling, s.P, c.batch) * curv.noise_variance_per_example
    autocorr = noise_autocorrelation(eigenbasis.projections,
                                     s.sampler(sampling, "noise", sampling, replicas=c.noise_replicas),
                                     c.noise_epochs * s.M, s.max_lag)
    return SamplerResult(
        noise_variance=sigma2, autocorrelation_per_direction=autocorr.per_direction,
        autocorrelation_trace=autocorr.trace, noise_kernel=noise_kernel(sampling, s.M, s.max_lag),
        theory=kuehn_rosenow_curves(curv.eigenvalues, sigma2, sampling, c, s.M),
        late_phase=_late_phase(s, sampling, start_state, eigenbasis.eigenvectors))
