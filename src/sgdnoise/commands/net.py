"""``sgdnoise net`` and its reproductions: config -> run -> result folder (docs/net.md)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from sgdnoise.commands import Experiment, Reproduction
from sgdnoise.experiments.net import NetConfig, reproductions, run
from sgdnoise.report import net as report
from sgdnoise.report.folder import ResultFolder

EXPERIMENT = Experiment(
    NetConfig, "Hessian eigenbasis, gradient noise and weight fluctuations of a network",
    run, report.save, report.show, lambda result: 0 if result.completed else 1, "results/net")

REPRODUCTIONS = {
    "kuehn-rosenow-lenet-digits": Reproduction(
        "Kuehn & Rosenow Figs. 17/20/24: LeNet-5 on digits, Var theta, Var v, tau against lambda, "
        "epoch vs with-replacement", reproductions.lenet_digits, report.save,
        lambda result: 0 if result.completed else 1),
    "orvieto-widening-valley": Reproduction(
        "Orvieto et al. 2022 / Kuehn & Rosenow Fig. 25: GD, PGD and Anti-PGD in the widening valley",
        reproductions.widening_valley, report.save_valley),
}


def legacy_reproductions() -> dict[str, Any]:
    """:data:`REPRODUCTIONS` in the form ``sgdnoise reproduce`` still reads (``run(out, seed) -> summary``)."""
    from sgdnoise.experiments.reproduce import Reproduction as Legacy

    def wrap(entry: Reproduction) -> Any:
        def run_into(out: Path, seed: int) -> dict[str, Any]:
            folder = ResultFolder(out, "--out").prepare()
            result = entry.run(seed, sys.stderr.isatty())
            entry.save(result, folder)
            return result.to_summary()
        return Legacy(entry.description, run_into)

    return {name: wrap(entry) for name, entry in REPRODUCTIONS.items()}
