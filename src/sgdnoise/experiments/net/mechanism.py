r"""The weight-dependent gradient noise of a network, measured along the late-phase trajectory.

In the top-``k`` eigenbasis the per-example gradient at :math:`\theta` is, to first order about
the pre-trained weights :math:`\theta_0` (docs/theory.md §3g, network form in
:mod:`sgdnoise.theory.net_noise`), :math:`q_n(\theta) \approx q_n + B_n p`,
:math:`p = V^\top(\theta - \theta_0)`.  The noise of the batch :math:`\mathcal B_t` of step ``t`` is
then the sum of three parts, each recorded along an actual trajectory
(:func:`trajectory_noise`):

- ``reference``: :math:`\bar q_{\mathcal B_t} - \bar q`, the noise at :math:`\theta_0`;
- ``offset``: :math:`(\bar B_{\mathcal B_t} - \bar B)\bar p`, from the mean displacement
  :math:`\bar p` of the trajectory (noise at fixed weights too, anti-correlated in epochs);
- ``fluctuation``: :math:`(\bar B_{\mathcal B_t} - \bar B)(p_t - \bar p)`, from the fluctuations,
  the part :mod:`sgdnoise.theory.net_noise` adds to Kühn-Rosenow.

For each part the lag autocovariance along every direction, its variance, and the
low-frequency ratio :math:`S(0)/C(0) = 1 + 2\sum_{h=1}^{L} C(h)/C(0)` of the directions below
:math:`\lambda_{\rm cross}` (1: uncorrelated; 0: fully anti-correlated, as the epoch kernel
makes the noise at fixed weights).  Every part has mean zero by construction (``q`` centred over
the examples, :math:`\bar B_{\mathcal B} - \bar B` averaging to zero), so no mean is subtracted:
subtracting a sample mean would bias the sum over lags by about ``-2 L / T``.  Standard errors
from :data:`SEGMENTS` consecutive segments of the trajectory, each treated as one replica.

:func:`linear_check` holds the first-order model against the per-example gradients measured
at the end of the late phase: how much of their change since :math:`\theta_0` the top-k
displacement explains (the rest comes from the displacement outside the top-k subspace and
from higher orders).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from sgdnoise.stats.streaming import LagAutocovariance, segment_mean

#: Segments of the trajectory whose spread gives the standard errors.
SEGMENTS = 8
#: The trajectory lasts this many times ``noise_epochs`` epochs.
TRAJECTORY_EPOCHS = 4
PARTS = ("reference", "offset", "fluctuation")


def _low_frequency(acov: np.ndarray) -> np.ndarray:
    """Per replica ``1 + 2 sum_{h>=1} C(h) / C(0)`` of the autocovariance ``(R, L + 1)``."""
    return 1 + 2 * acov[:, 1:].sum(axis=1) / acov[:, 0]


def trajectory_noise(session: Any, sampler: Any, optimizer: Any, basis: Any, theta0: Any,
                     eigenbasis: Any, below: np.ndarray) -> dict[str, Any] | None:
    """Train :data:`TRAJECTORY_EPOCHS` x ``noise_epochs`` more epochs with ``sampler``, splitting each
    step's noise (module docstring).

    Returns per part ``variance`` (k,), ``autocovariance`` (max_lag + 1, k) and
    ``low_frequency_ratio`` of the directions in ``below`` (value, stderr); None when too short
    or stopped.
    """
    import torch

    from sgdnoise.interrupts import stop_requested
    from sgdnoise.problems.networks import flat_parameters

    s, c = session, session.config
    X, y = s.train_set
    steps = TRAJECTORY_EPOCHS * c.noise_epochs * s.M
    segment = steps // SEGMENTS
    if segment <= s.max_lag:
        return None
    B = eigenbasis.hessian_blocks
    batches = sampler.draw(SEGMENTS * segment)[:, 0, :]
    p = np.empty((len(batches), B.shape[1]))
    s.model.train()
    for t, batch in enumerate(batches):
        if stop_requested():
            s.stop("during the trajectory noise measurement")
            return None
        p[t] = (basis.T @ (flat_parameters(s.model) - theta0)).double().cpu().numpy()
        index = torch.as_tensor(batch)
        optimizer.zero_grad(set_to_none=True)
        s.loss_fn(s.model(X[index]), y[index]).backward()
        optimizer.step()
    return split_noise(eigenbasis.projections, B, batches, p, below, s.max_lag)


def split_noise(q: np.ndarray, blocks: np.ndarray, batches: np.ndarray, p: np.ndarray, below: np.ndarray,
                max_lag: int) -> dict[str, Any]:
    """The three parts of the module docstring for the batches ``(T, S)`` and displacements ``p`` (T, k).

    ``q`` (P, k) and ``blocks`` (P, k, k) at the reference weights; the trajectory is cut into
    :data:`SEGMENTS` segments (replicas of the autocovariance, :class:`LagAutocovariance`).
    """
    q = q - q.mean(axis=0)
    B_mean = blocks.mean(axis=0)
    segment = len(batches) // SEGMENTS
    batches, p = batches[: SEGMENTS * segment], p[: SEGMENTS * segment]
    spread = np.stack([blocks[b].mean(axis=0) for b in batches]) - B_mean
    p_mean = p.mean(axis=0)
    parts = {"reference": np.stack([q[b].mean(axis=0) for b in batches]),
             "offset": spread @ p_mean, "fluctuation": np.einsum("tij,tj->ti", spread, p - p_mean)}
    out: dict[str, Any] = {"steps": len(batches), "segments": SEGMENTS}
    for name, series in parts.items():
        acov = LagAutocovariance(max_lag, SEGMENTS, (q.shape[1],), zero_mean=True)  # each part has mean 0
        acov.add(series.reshape(SEGMENTS, segment, -1).transpose(1, 0, 2))
        per = acov.per_replica()  # (R, L + 1, k)
        ratio = segment_mean(_low_frequency(per[:, :, below].sum(axis=2))) if below.any() else None
        out[name] = {"variance": segment_mean(per[:, 0]), "autocovariance": segment_mean(per),
                     "low_frequency_ratio": ratio}
    return out


def linear_check(q_end: np.ndarray, q0: np.ndarray, blocks: np.ndarray, p_end: np.ndarray) -> dict[str, np.ndarray]:
    r"""Per direction: the change of the per-example projected gradients since :math:`\theta_0` and
    how much of it the top-k displacement explains.

    ``change_to_noise``: :math:`\mathrm{Var}_n[\Delta q_{n,i}] / \mathrm{Var}_n[q_{n,i}]` with
    :math:`\Delta q_n = q_n(\theta_{\rm end}) - q_n(\theta_0)` (both centred over examples);
    ``explained``: :math:`1 - \sum_n (\Delta q_{n,i} - (B_n p)_i)^2 / \sum_n \Delta q_{n,i}^2`
    (centred), 1 when the first-order top-k model accounts for the whole change.
    """
    change = q_end - q0
    change = change - change.mean(axis=0)
    linear = blocks @ p_end
    linear = linear - linear.mean(axis=0)
    q0c = q0 - q0.mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"change_to_noise": (change**2).sum(0) / (q0c**2).sum(0),
                "explained": 1 - ((change - linear) ** 2).sum(0) / (change**2).sum(0)}
