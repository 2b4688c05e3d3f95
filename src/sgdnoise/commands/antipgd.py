"""The Anti-PGD reproductions (docs/antipgd.md): widening valley and LeNet-5 on digits."""
from __future__ import annotations

from sgdnoise.commands import Reproduction
from sgdnoise.experiments.antipgd import reproductions
from sgdnoise.report import antipgd as report


def _status(result) -> int:
    return 0 if result.status == "completed" else 1


REPRODUCTIONS = {
    "kuehn-rosenow-antipgd-valley": Reproduction(
        "Kuehn & Rosenow Fig. 25 / Orvieto et al.: GD, PGD, Anti-PGD replicas in the widening valley vs "
        "GD on L + sigma^2/2 tr H", reproductions.valley, report.save_valley, _status),
    "kuehn-rosenow-antipgd-lenet": Reproduction(
        "Kuehn & Rosenow / Orvieto et al.: GD, PGD, Anti-PGD, SGD on LeNet-5 with digits: tr H and test "
        "accuracy after training", reproductions.lenet, report.save_lenet, _status),
}
