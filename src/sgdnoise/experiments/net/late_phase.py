r"""Per sampler: the gradient noise along the eigenvectors, the Kühn-Rosenow prediction, the late phase.

For a sampler with noise factor :math:`f` (docs/theory.md §2), the one-step noise variance
along :math:`v_i` is :math:`\sigma^2_{\delta g,i} = f\sigma^2_{1,i}`; its autocorrelation by lag
is measured at the pre-trained weights with the sampler itself and held against the kernel
:math:`\kappa_h`.  The closed form of §3d with the measured :math:`\lambda_i` and
:math:`\sigma^2_{\delta g,i}` predicts :math:`\mathrm{Var}\,\theta_i`, :math:`\mathrm{Var}\,v_i`,
:math:`\tau_i`; the late phase (``burn_in_epochs``, then ``epochs`` recorded epochs at constant
``lr`` from the pre-trained weights) measures them with streaming sums
(:class:`~sgdnoise.measure.recorder.ProjectedFluctuations`, 20 batch-means blocks, §8).

Whether a direction's measurement can be trusted (:func:`stationarity`): its recorded window
of ``T`` steps must hold at least :data:`WINDOW_TAUS` relaxation times :math:`\tau_i`, and the
mean of :math:`\theta_i` over the second half of the window must differ from that over the
first half by less than :data:`DRIFT_LIMIT` standard deviations :math:`\sqrt{\mathrm{Var}\,\theta_i}`
(stationary fluctuations give about :math:`\sqrt{8\tau_i/T}`, a steady drift about 1.7).
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
from sgdnoise.interrupts import announce_phase, stop_requested

#: A trusted direction's recorded window holds at least this many relaxation times tau_i.
WINDOW_TAUS = 20
#: ... and its mean moved by less than this many standard deviations between the window's halves.
DRIFT_LIMIT = 1.0


def stationarity(drift_ratio: np.ndarray, tau: np.ndarray, window: int) -> np.ndarray:
    """Per direction: ``window >= WINDOW_TAUS tau_i`` and ``drift_ratio_i < DRIFT_LIMIT`` (module docstring)."""
    with np.errstate(invalid="ignore"):
        return (np.nan_to_num(drift_ratio, nan=np.inf) < DRIFT_LIMIT) & (tau > 0) & (window >= WINDOW_TAUS * tau)


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
    if burn.diverged or burn.interrupted:
        return LatePhase(burn.steps, list(burn.epoch_losses))
    recorder = ProjectedFluctuations(basis, flat_parameters(s.model), c.epochs * s.M, RECORD_BLOCKS)
    log = s.train(f"late phase ({sampling})", sampler, optimizer, c.epochs, f"{sampling}-record", recorder=recorder)
    fluctuations = None
    if recorder.steps >= 2:
        found = recorder.result()
        k = found["var_theta"].value.shape
        drift = recorder.drift_ratio() if recorder.theta.filled.sum() >= 2 else np.full(k, np.nan)
        fluctuations = Fluctuations(found["var_theta"], found["var_v"], found["tau"], found["mean_theta"],
                                    drift, stationarity(drift, found["tau"].value, recorder.steps))
    losses = list(burn.epoch_losses) + list(log.epoch_losses)
    if log.interrupted:  # what was recorded, without the slow measurements at the end
        return LatePhase(burn.steps, losses, log.steps, fluctuations=fluctuations)
    projections = PerExampleGradients(s.model, s.loss_fn, s.train_set).project(basis)
    train_accuracy, test_accuracy = s.accuracies()
    return LatePhase(burn.steps, losses, log.steps, train_accuracy, test_accuracy,
                     np.diag(projected_covariance(projections).double().cpu().numpy()), fluctuations)


def run_sampler(session: Session, sampling: str, eigenbasis: Eigenbasis, start_state: dict[str, Any]) -> SamplerResult:
    """Noise (stream ``noise``), prediction and late phase of one sampler from the pre-trained point."""
    from sgdnoise.measure.gradient_noise import noise_autocorrelation
    from sgdnoise.theory import batch_noise_factor, noise_kernel

    s, c = session, session.config
    curv = eigenbasis.curvature
    sigma2 = batch_noise_factor(sampling, s.P, c.batch) * curv.noise_variance_per_example
    announce_phase("noise")
    autocorr = noise_autocorrelation(eigenbasis.projections,
                                     s.sampler(sampling, "noise", sampling, replicas=c.noise_replicas),
                                     c.noise_epochs * s.M, s.max_lag)
    if stop_requested():
        s.stop(f"during the noise measurement ({sampling}), before its late phase")
        late_phase = LatePhase(0, [])
    else:
        announce_phase(f"late-phase:{sampling}")
        late_phase = _late_phase(s, sampling, start_state, eigenbasis.eigenvectors)
    return SamplerResult(
        noise_variance=sigma2, autocorrelation_per_direction=autocorr.per_direction,
        autocorrelation_trace=autocorr.trace, noise_kernel=noise_kernel(sampling, s.M, s.max_lag),
        theory=kuehn_rosenow_curves(curv.eigenvalues, sigma2, sampling, c, s.M), late_phase=late_phase)
