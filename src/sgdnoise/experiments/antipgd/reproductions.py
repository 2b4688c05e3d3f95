r"""The Anti-PGD reproductions (``sgdnoise reproduce NAME``; docs/antipgd.md).

``kuehn-rosenow-antipgd-valley``
    Kühn & Rosenow Fig. 25 / Orvieto et al. 2022: GD, PGD and Anti-PGD in the widening valley,
    replicas with ±2 s.e. bands, against GD on :math:`L + \frac{\sigma^2}{2}\operatorname{tr}\nabla^2 L`
    (docs/theory.md §7a; :func:`valley`).
``kuehn-rosenow-antipgd-lenet``
    GD, PGD, Anti-PGD and SGD on LeNet-5 with the digits: tr H and test accuracy after training,
    several seeds (:func:`lenet`).
"""
from __future__ import annotations

from sgdnoise.experiments.antipgd.lenet import LenetResult, LenetSettings, run_lenet
from sgdnoise.experiments.antipgd.valley import ValleyResult, ValleySettings, run_valley


def valley(seed: int = 0, progress: bool = False) -> ValleyResult:
    """:func:`run_valley` with the default :class:`ValleySettings` and ``seed``."""
    return run_valley(ValleySettings(seed=seed), progress)


def lenet(seed: int = 0, progress: bool = False) -> LenetResult:
    """:func:`run_lenet` with the default :class:`LenetSettings` and ``seed``."""
    return run_lenet(LenetSettings(seed=seed), progress)
