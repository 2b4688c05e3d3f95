r"""The figures ``sgdnoise net`` reproduces, as computations returning typed results.

``kuehn-rosenow-lenet-digits``
    Kühn & Rosenow (arXiv 2306.05300) Figs. 17/20/24: LeNet-5 on the digits, Var theta,
    Var v and tau against lambda, epoch vs with-replacement sampling -- the ``net`` run with
    its defaults (:func:`lenet_digits`).
``orvieto-widening-valley``
    Orvieto et al. 2022 / Kühn & Rosenow Fig. 25: GD, PGD and Anti-PGD in the widening valley
    :math:`L = \frac12 v^2\|u\|^2` (docs/theory.md §7; :func:`widening_valley`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sgdnoise.experiments.net.config import NetConfig
from sgdnoise.experiments.net.result import NetResult
from sgdnoise.experiments.net.run import run

#: Settings of the widening-valley runs (chosen here; Orvieto et al.'s own are not reproduced).
VALLEY_SETTINGS = {"steps": 10_000, "lr": 0.05, "sigma": 0.1, "dim": 10, "u0": 1.0, "v0": 1.0}
#: What the summary keeps of the end of each path.
VALLEY_FINAL = ("loss", "hessian_trace", "u_norm", "v")


def lenet_digits(seed: int = 0, progress: bool = True, checkpoints: Path | None = None) -> NetResult:
    """The ``net`` experiment with its defaults (LeNet-5 on the digits) and ``seed``."""
    return run(NetConfig(seed=seed), progress, checkpoints)


@dataclass(frozen=True)
class WideningValleyResult:
    """The paths of GD, PGD and Anti-PGD in the widening valley, recorded every 100 steps.

    ``paths[method]`` holds arrays ``step``, ``loss``, ``hessian_trace``, ``u_norm``, ``v``.
    """

    settings: dict[str, Any]
    paths: dict[str, dict[str, np.ndarray]]

    def to_summary(self) -> dict[str, Any]:
        return {"config": self.settings,
                "final": {m: {k: p[k][-1] for k in VALLEY_FINAL} for m, p in self.paths.items()}}


def widening_valley(seed: int = 0, progress: bool = False) -> WideningValleyResult:
    """GD, PGD and Anti-PGD from the same start (:func:`sgdnoise.dynamics.injection.widening_valley`)."""
    from sgdnoise.dynamics.injection import INJECTIONS
    from sgdnoise.dynamics.injection import widening_valley as valley_path

    settings = {**VALLEY_SETTINGS, "seed": seed}
    return WideningValleyResult(settings, {m: valley_path(m, **settings, progress=progress) for m in INJECTIONS})
