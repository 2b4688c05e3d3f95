"""The Kuehn-Rosenow prediction for a measured network, from per-example noise (docs/theory.md §2, §3d).

What a practitioner measures is the per-example gradient variance along each Hessian
eigenvector, ``sigma^2_1,i = v_i^T Sigma_1 v_i``
(:class:`sgdnoise.measure.network_noise.PerExampleGradients`,
:func:`~sgdnoise.measure.network_noise.projected_covariance`).  :func:`predict_fluctuations`
turns it into the one-step variance ``f sigma^2_1,i`` of the sampler
(:func:`~sgdnoise.theory.noise.batch_noise_factor`) and calls
:func:`~sgdnoise.theory.kuehn_rosenow.kuehn_rosenow` with ``M = n_examples // batch_size``
batches per epoch for ``epoch`` sampling and ``M = 1`` (independent steps) otherwise; the
result compares directly with :class:`sgdnoise.measure.recorder.FluctuationResult`.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from sgdnoise._spec import check_int, check_sampling
from sgdnoise.theory.kuehn_rosenow import KuehnRosenow, kuehn_rosenow
from sgdnoise.theory.noise import batch_noise_factor

#: Samplers with a stationary noise kernel (``fixed-order`` repeats one order: periodic, not stationary).
PREDICTED_SAMPLINGS = ("with-replacement", "random-batch", "epoch")


def _numpy(values: Any) -> np.ndarray:
    """float64 array from array_like or a torch tensor (any device), without importing torch."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=np.float64)


def predict_fluctuations(
    eigenvalues: Any,
    noise_variances: Any,
    lr: float,
    momentum: float,
    batch_size: int,
    n_examples: int,
    sampling: str = "epoch",
) -> KuehnRosenow:
    """Kuehn-Rosenow ``var_theta``, ``var_v``, ``tau`` per direction for SGD with ``sampling``.

    Parameters
    ----------
    eigenvalues : array_like or torch.Tensor (k,)
        Hessian eigenvalues lambda_i >= 0 (``lr lambda_i < 2 (1 + momentum)``).
    noise_variances : array_like or torch.Tensor (k,)
        *Per-example* gradient variances ``sigma^2_1,i = v_i^T Sigma_1 v_i`` along the same
        directions (not yet divided by the batch size).
    lr, momentum : float
        Of ``torch.optim.SGD(lr=lr, momentum=momentum)`` (heavy ball, docs/theory.md §1).
    batch_size, n_examples : int
        S and P, ``1 <= S <= P``.
    sampling : {"epoch", "with-replacement", "random-batch"}
        ``epoch``: a fresh permutation each epoch, ``M = P // S`` batches; the others draw
        every step independently (``M = 1``).  ``fixed-order`` is refused (not stationary).

    Returns
    -------
    KuehnRosenow
        ``kuehn_rosenow(eigenvalues, f * noise_variances, lr, momentum, M)`` with
        ``f = batch_noise_factor(sampling, P, S)``.

    Examples
    --------
    >>> kr = predict_fluctuations([2.0, 0.1], [1.0, 1.0], lr=0.1, momentum=0.0, batch_size=10,
    ...                           n_examples=1000, sampling="epoch")
    >>> kr.tau.round(1)
    array([ 4.6, 26.7])
    """
    check_sampling(sampling, allowed=PREDICTED_SAMPLINGS)
    n_examples = check_int("n_examples", n_examples, 1)
    batch_size = check_int("batch_size", batch_size, 1, n_examples)
    factor = batch_noise_factor(sampling, n_examples, batch_size)
    batches_per_epoch = n_examples // batch_size if sampling == "epoch" else 1
    return kuehn_rosenow(_numpy(eigenvalues), factor * _numpy(noise_variances), lr, momentum, batches_per_epoch)
