"""Typed results of ``sgdnoise ivfr``: :class:`IvfrResult` and its ``summary.json`` form."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sgdnoise.experiments.ivfr.analysis import LayerAnalysis
from sgdnoise.measure.flatness import loss_profiles

#: Loss profiles kept for the figure: this many top directions of replica 0, on this grid of s / F.
PROFILE_DIRECTIONS, PROFILE_GRID = 4, np.linspace(-1.0, 1.0, 41)


@dataclass
class IvfrResult:
    """One ``sgdnoise ivfr`` run.

    Attributes
    ----------
    status : str
        ``completed`` or where the run stopped.
    layers : dict
        :class:`~sgdnoise.experiments.ivfr.analysis.LayerAnalysis` by layer name.
    theory : dict
        Per layer the predictions of the linearised theory (``discrete`` and ``continuum``),
        with z-scores of the measurement along the predicted directions; empty for the MLP.
    profiles : dict
        Per layer ``(s, L(<w> + s p_i))`` of the top directions of replica 0.
    info : dict
        Model, data, window (snapshots, steps) and what the theory projected out.
    settings : dict
        ``config.to_mapping()``.
    """

    status: str
    layers: dict[str, LayerAnalysis]
    theory: dict[str, Any]
    profiles: dict[str, dict[str, np.ndarray]]
    info: dict[str, Any]
    settings: dict[str, Any] = field(default_factory=dict)

    def to_summary(self) -> dict[str, Any]:
        return {"status": self.status,
                "config": {"experiment": "ivfr", "settings": self.settings, **self.info},
                "layers": {name: a.to_summary() for name, a in self.layers.items()},
                "theory": self.theory}


def status(result: IvfrResult) -> int:
    """Exit status: 0 when completed, 1 when the run diverged or was interrupted."""
    return 0 if result.status == "completed" else 1


def profiles_of(analysis: LayerAnalysis, snapshots: np.ndarray, layer: slice, directions: np.ndarray,
                loss) -> dict[str, np.ndarray]:
    """Loss profiles of the top directions of replica 0 over ``[-F_i, F_i]``."""
    n = min(PROFILE_DIRECTIONS, len(directions))
    span = np.where(np.isfinite(analysis.flatness[0, :n]), analysis.flatness[0, :n], 1.0)
    centre = snapshots[0].mean(axis=0)
    dirs = np.zeros((n, snapshots.shape[-1]))
    dirs[:, layer] = directions[:n]
    curves = np.array([loss_profiles(loss, centre, dirs[i:i + 1], PROFILE_GRID * span[i])[0] for i in range(n)])
    return {"s": PROFILE_GRID[None, :] * span[:, None], "loss": curves, "variances": analysis.variances[0, :n]}
