r"""The figures ``sgdnoise net`` reproduces, as computations returning typed results.

``kuehn-rosenow-lenet-digits``
    Kühn & Rosenow (arXiv 2306.05300) Figs. 17/20/24: LeNet-5 on the digits, Var theta,
    Var v and tau against lambda, epoch vs with-replacement sampling -- the ``net`` run with
    its defaults (:func:`lenet_digits`).

The Anti-PGD reproductions (Kühn & Rosenow Fig. 25) are in :mod:`sgdnoise.experiments.antipgd`.
"""
from __future__ import annotations

from pathlib import Path

from sgdnoise.experiments.net.config import NetConfig
from sgdnoise.experiments.net.result import NetResult
from sgdnoise.experiments.net.run import run


def lenet_digits(seed: int = 0, progress: bool = True, checkpoints: Path | None = None) -> NetResult:
    """The ``net`` experiment with its defaults (LeNet-5 on the digits) and ``seed``."""
    return run(NetConfig(seed=seed), progress, checkpoints)
