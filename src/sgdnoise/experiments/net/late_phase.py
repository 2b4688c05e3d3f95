r"""Per sampler: the gradient noise along the eigenvectors, the Kühn-Rosenow prediction, the late phase.

For a sampler with noise factor :math:`f` (docs/theory.md §2), the one-step noise variance
along :math:`v_i` is :math:`\sigma^2_{\delta g,i} = f\sigma^2_{1,i}`; its autocorrelation by lag
is measured at the pre-trained weights with the sampler itself and held against the kernel
:math:`\kappa_h`.  The closed form of §3d with the measured :math:`\lambda_i` and
:math:`\sigma^2_{\delta g,i}` predicts :math:`\mathrm{Var}\,\theta_i`, :math:`\mathrm{Var}\,v_i`,
:math:`\tau_i`; the late phase (``burn_in_epochs``, then ``epochs`` recorded epochs at constant
``lr`` from the pre-trained weights) measures them with streaming sums
(:class:`~sgdnoise.measure.recorder.ProjectedFluctuations`, 20 batch-means blocks, §8).

Whether a direction's measurement can be trusted (:func:`stationarity`): ``Var theta_i`` is
measured about the least-squares line of the recorded window (linear drift removed,
:mod:`sgdnoise.measure.window`); the window of ``T`` steps must hold at least
:data:`WINDOW_TAUS` relaxation times :math:`\tau_i` (*equilibrated*), and the projected mean
must not trend (slope within :data:`TREND_Z` batch-means standard errors of zero).  The mean
loss per epoch gets the same trend test (:func:`loss_trend`), over the burn-in and over the window.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from sgdnoise.experiments.net.config import RECORD_BLOCKS, RECORD_RESOLUTION, NetConfig
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
from sgdnoise.stats.streaming import Estimate

#: A trusted direction's recorded window holds at least this many relaxation times tau_i.
WINDOW_TAUS = 20
#: ... and its projected mean has no trend beyond this many standard errors.
TREND_Z = 3.0
#: Blocks of epochs behind the standard error of the loss trend.
LOSS_BLOCKS = 10


def stationarity(relaxation: np.ndarray, trend: Estimate, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Per direction: (equilibrated = ``window >= WINDOW_TAUS t_i``, trending = ``|b_i| > TREND_Z se(b_i)``),
    ``t_i`` the relaxation time (steps)."""
    with np.errstate(invalid="ignore"):
        equilibrated = (relaxation > 0) & (window >= WINDOW_TAUS * np.nan_to_num(relaxation, nan=np.inf))
        trending = ~(np.abs(trend.value) <= TREND_Z * trend.stderr)
    return equilibrated, trending


def loss_trend(epoch_losses: list[float]) -> dict[str, float | None]:
    """Slope of the mean loss per epoch against the epoch (:class:`~sgdnoise.stats.trend.TrendMoments`,
    :data:`LOSS_BLOCKS` blocks of epochs), its standard error, ``z`` = slope / stderr and
    ``relative_change`` = slope x epochs / mean loss; None entries for fewer than 2 blocks."""
    from sgdnoise.stats.trend import TrendMoments

    n = len(epoch_losses)
    found: dict[str, float | None] = {"epochs": n, "slope": None, "stderr": None, "z": None, "relative_change": None}
    blocks = min(LOSS_BLOCKS, n)
    if blocks < 3:
        return found
    moments = TrendMoments(blocks, ())
    for epoch, value in enumerate(epoch_losses):
        moments.add(epoch * blocks // n, float(epoch), np.asarray(value, float))
    est = moments.trend()
    slope, stderr = float(est.value), float(est.stderr)
    found.update(slope=slope, stderr=stderr, z=slope / stderr if stderr > 0 else None,
                 relative_change=slope * n / float(np.mean(epoch_losses)))
    return found


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


def _fluctuations(recorder: Any, lam: np.ndarray, config: NetConfig) -> Fluctuations | None:
    """The recorder's window, drift removed, with the verdicts of :func:`stationarity`; the relaxation
    time is the larger of the measured autocorrelation time and the theory's (heavy ball, lambda_i)."""
    from sgdnoise.theory.net_noise import relaxation_time

    if recorder.steps < 3:
        return None
    raw, window = recorder.result(), recorder.detrended(relaxation_time(lam, config.lr, config.momentum))
    equilibrated, trending = stationarity(window.relaxation_time, window.trend, recorder.steps)
    return Fluctuations(window.var_theta, window.var_v, window.tau, raw["mean_theta"], window.var_theta_raw,
                        window.trend, window.autocorrelation_time, window.relaxation_time, window.block_length,
                        equilibrated, trending)


def _late_phase(session: Session, sampling: str, start_state: dict[str, Any], eigenbasis: Eigenbasis,
                below: np.ndarray) -> LatePhase:
    """Burn-in, recorded epochs, then the trajectory noise, with ``sampling`` from ``start_state``
    (stream ``late-phase``); at the end the per-example gradients against the first-order model."""
    from sgdnoise.experiments.net.mechanism import linear_check, trajectory_noise
    from sgdnoise.measure.network_noise import PerExampleGradients
    from sgdnoise.measure.recorder import ProjectedFluctuations
    from sgdnoise.problems.networks import flat_parameters

    s, c, basis = session, session.config, eigenbasis.eigenvectors
    lam = eigenbasis.curvature.eigenvalues
    s.model.load_state_dict(start_state)
    theta0 = flat_parameters(s.model).to(basis.dtype)
    sampler, optimizer = s.sampler(sampling, "late-phase", sampling), s.optimizer(c.lr)
    burn = s.train(f"burn-in ({sampling})", sampler, optimizer, c.burn_in_epochs, f"{sampling}-burn-in")
    if burn.diverged or burn.interrupted:
        return LatePhase(burn.steps, list(burn.epoch_losses))
    recorder = ProjectedFluctuations(basis, flat_parameters(s.model), c.epochs * s.M, RECORD_BLOCKS,
                                     resolution=RECORD_RESOLUTION)
    log = s.train(f"late phase ({sampling})", sampler, optimizer, c.epochs, f"{sampling}-record", recorder=recorder)
    losses = list(burn.epoch_losses) + list(log.epoch_losses)
    trends = {"burn_in": loss_trend(list(burn.epoch_losses)), "window": loss_trend(list(log.epoch_losses))}
    if log.interrupted or log.diverged:  # what was recorded, without the slow measurements at the end
        return LatePhase(burn.steps, losses, log.steps, fluctuations=_fluctuations(recorder, lam, c),
                         loss_trend=trends)
    announce_phase(f"trajectory-noise:{sampling}")
    mechanism = trajectory_noise(s, sampler, optimizer, basis, theta0, eigenbasis, below)
    projections = PerExampleGradients(s.model, s.loss_fn, s.train_set).project(basis).double().cpu().numpy()
    displacement = flat_parameters(s.model).to(basis.dtype) - theta0
    p_end = (basis.T @ displacement).double().cpu().numpy()
    if mechanism is not None:
        mechanism["linear_check"] = linear_check(projections, eigenbasis.projections, eigenbasis.hessian_blocks, p_end)
        mechanism["displacement_in_subspace"] = float(np.sum(p_end**2) / float(displacement.double().square().sum()))
    train_accuracy, test_accuracy = s.accuracies()
    centred = projections - projections.mean(axis=0)
    return LatePhase(burn.steps, losses, log.steps, train_accuracy, test_accuracy, np.mean(centred**2, axis=0),
                     _fluctuations(recorder, lam, c), trends, mechanism)


def weight_dependent_curves(eigenbasis: Eigenbasis, sampling: str, config: NetConfig, batches_per_epoch: int,
                            n_examples: int) -> dict[str, dict[str, np.ndarray]]:
    """The predictions of :mod:`sgdnoise.theory.net_noise`, per lag kernel of the weight-dependent part.

    ``lagged`` (the prediction: the kernel follows the weights' lag covariance) for every sampler;
    for ``epoch`` also the bounds ``white`` (uncorrelated) and ``epoch`` (anti-correlated like the
    noise at fixed weights).  NaN unless every direction is stable (0 < lr lambda_i < 2 (1 + beta)).
    """
    from sgdnoise.theory import batch_noise_factor
    from sgdnoise.theory.net_noise import lagged_weight_dependent_fluctuations, weight_dependent_fluctuations

    curv = eigenbasis.curvature
    lam, f = curv.eigenvalues, batch_noise_factor(sampling, n_examples, config.batch)
    M = batches_per_epoch if sampling == "epoch" else 1
    if not ((lam > 0).all() and (config.lr * lam < 2 * (1 + config.momentum)).all()):
        return {"lagged": {key: np.full(lam.shape, np.nan) for key in PREDICTED}}
    args = (lam, f * curv.noise_variance_per_example, curv.hessian_spread, f, config.lr, config.momentum, M)
    lagged = lagged_weight_dependent_fluctuations(*args)
    out = {"lagged": {key: lagged[key] for key in (*PREDICTED, "low_frequency_ratio")}}
    out["lagged"]["noise_variance"] = lagged["noise_lag_covariance"][:, 0]
    out["lagged"]["noise_low_frequency"] = lagged["noise_lag_covariance"][:, 0] + 2 * lagged[
        "noise_lag_covariance"][:, 1:].sum(axis=1)
    for kernel in ("white", "epoch") if sampling == "epoch" else ():
        found = weight_dependent_fluctuations(*args, kernel=kernel)
        out[kernel] = {"var_theta": found.var_theta, "var_v": found.var_v, "tau": found.tau,
                       "weight_dependent_share": found.weight_dependent_share,
                       "spectral_radius": np.asarray(found.spectral_radius)}
    return out


def run_sampler(session: Session, sampling: str, eigenbasis: Eigenbasis, start_state: dict[str, Any]) -> SamplerResult:
    """Noise (stream ``noise``), prediction and late phase of one sampler from the pre-trained point."""
    from sgdnoise.measure.gradient_noise import noise_autocorrelation
    from sgdnoise.theory import batch_noise_factor, lambda_cross, noise_kernel

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
        late_phase = _late_phase(s, sampling, start_state, eigenbasis, curv.eigenvalues < lambda_cross(
            c.lr, c.momentum, c.batch, s.P))
    return SamplerResult(
        noise_variance=sigma2, autocorrelation_per_direction=autocorr.per_direction,
        autocorrelation_trace=autocorr.trace, noise_kernel=noise_kernel(sampling, s.M, s.max_lag),
        theory=kuehn_rosenow_curves(curv.eigenvalues, sigma2, sampling, c, s.M), late_phase=late_phase,
        weight_dependent=weight_dependent_curves(eigenbasis, sampling, c, s.M, s.P))
