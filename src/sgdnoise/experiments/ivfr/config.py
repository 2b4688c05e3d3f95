"""Settings of ``sgdnoise ivfr``: the problem and SGD of ``sgdnoise linear`` plus the model and the window.

:class:`IvfrConfig` subclasses :class:`~sgdnoise.experiments.linear.config.SGDSettings`
(same flags, same meaning) with its own defaults for the teacher-student problem
(N = 20, P = 200, K = 10 outputs) and the fields of the inverse variance-flatness
measurement.  The simulator backend and the noise autocorrelation of ``sgdnoise linear``
do not apply and are not command-line options here.
"""
from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

from sgdnoise._spec import SAMPLINGS, check_choice, check_int, check_positive, check_real
from sgdnoise.config import option, redefault
from sgdnoise.errors import UsageError
from sgdnoise.experiments.linear.config import SGDSettings
from sgdnoise.problems.linear import LinearRegression

MODELS = ("linear", "two-layer", "deep-linear", "mlp")
#: Teacher-student defaults of ``sgdnoise ivfr`` (N, P, label noise, outputs K).
DEFAULTS = {"N": 20, "P": 200, "label_noise": 0.25, "outputs": 10}


@dataclasses.dataclass(frozen=True)
class IvfrConfig(SGDSettings):
    """Settings of ``sgdnoise ivfr`` (docs/ivfr.md)."""

    experiment: ClassVar[str] = "ivfr"
    N: int | None = option(None, f"input dimension (default {DEFAULTS['N']}; with --data it must agree)",
                           flag="--N")
    P: int | None = option(None, f"number of examples (default {DEFAULTS['P']}; with --data it must agree)",
                           flag="--P")
    outputs: int | None = option(None, f"output dimension K of the teacher (default {DEFAULTS['outputs']}; "
                                       "not with --data)")
    data: str | None = option(None, "linear models: .npz with x (P x N) and y (P or P x K) instead of a "
                                    "teacher; mlp: 'digits' (default) or an .npz of images x and labels y")
    steps: int = redefault(SGDSettings, "steps", 40_000)
    burn_in: int = redefault(SGDSettings, "burn_in", 4_000)
    backend: str = option("numpy", "not used by ivfr", cli=False)
    device: str = option("cpu", "not used by ivfr", cli=False)
    max_lag: int = option(0, "not used by ivfr", cli=False)
    model: str = option("two-layer", "the network (linear: one layer, the control)", choices=MODELS)
    sampling: str = option("with-replacement", "sampling scheme (docs/theory.md §1)", choices=SAMPLINGS)
    hidden: int = option(4, "hidden width h of two-layer and deep-linear networks")
    layers: int = option(3, "number of weight matrices L of deep-linear")
    snapshot_every: int = option(20, "steps between snapshots of the weights in the measured window")
    kappa: float = option(math.e, "flatness threshold: F_i is the width where L < kappa L(<w>)")
    width: float = option(50 / 64, "mlp: hidden layers of round(64 width) units (0.78125 gives 50)")

    def check(self) -> None:
        super().check()
        check_choice("model", self.model, MODELS)
        check_choice("sampling", self.sampling, SAMPLINGS)
        check_int("hidden", self.hidden, 1)
        check_int("layers", self.layers, 2)
        check_int("snapshot_every", self.snapshot_every, 1)
        check_real("kappa", self.kappa, 1.0, low_open=True)
        check_positive("width", self.width)
        if self.steps // self.snapshot_every < 8:
            raise UsageError(f"snapshot_every must leave at least 8 snapshots in the {self.steps} measured "
                             f"steps (the window is longer than the run); got {self.snapshot_every}",
                             name="snapshot_every")

    @property
    def depth(self) -> int:
        """Number of weight matrices of the linear model."""
        return {"linear": 1, "two-layer": 2, "deep-linear": self.layers}.get(self.model, 3)

    def problem(self) -> LinearRegression:
        """The teacher-student data (ivfr's defaults) or the .npz of ``data``."""
        if self.data is not None:
            return LinearRegression.from_npz(self.data, self.N, self.P)
        pick = {name: DEFAULTS[name] if getattr(self, name) is None else getattr(self, name) for name in DEFAULTS}
        return LinearRegression.teacher_student(pick["N"], pick["P"], pick["label_noise"],
                                                outputs=pick["outputs"], seed=self.seed)
