"""Settings of ``sgdnoise linear`` and ``sgdnoise demo``: one frozen, validated dataclass each.

:class:`SGDSettings` holds what both share (the teacher-student problem or a data
file, and heavy-ball SGD with its measurement); :class:`LinearConfig` adds the
sampler, :class:`DemoConfig` runs two samplers side by side with its own
defaults.  Checks that need the data (batch size against P, the stability
limit) run in :meth:`SGDSettings.simulation`, before any work.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

from sgdnoise._spec import (
    SAMPLINGS,
    check_choice,
    check_int,
    check_momentum,
    check_positive,
    check_real,
    distinct,
)
from sgdnoise.config import ExperimentConfig, option, redefault
from sgdnoise.dynamics.simulator import BACKENDS, SimulationConfig
from sgdnoise.errors import UsageError
from sgdnoise.problems.linear import LinearRegression

#: The full d x d weight covariance is measured up to this dimension.
FULL_COVARIANCE_MAX_DIM = 2000
#: Defaults of the teacher-student problem when neither the flag nor a data file sets them.
DEFAULT_N, DEFAULT_P, DEFAULT_LABEL_NOISE = 100, 200, 0.25


@dataclasses.dataclass(frozen=True)
class SGDSettings(ExperimentConfig):
    """The problem (teacher-student or ``data``) and heavy-ball SGD with its measurement."""

    N: int | None = option(None, f"input dimension (default {DEFAULT_N}; with --data it must agree)",
                           flag="--N")
    P: int | None = option(None, f"number of examples (default {DEFAULT_P}; with --data it must agree)",
                           flag="--P")
    label_noise: float | None = option(None, f"label-noise variance sigma_eps^2 of the teacher "
                                             f"(default {DEFAULT_LABEL_NOISE}; not with --data)")
    outputs: int | None = option(None, "output dimension K of the teacher (default 1; not with --data)")
    data: str | None = option(None, ".npz file with x (P x N) and y (P or P x K) instead of a teacher")
    lr: float = option(0.1, "learning rate; lr * lambda_max must be < 2 (1 + momentum)")
    batch_size: int = option(10, "batch size S", flag="--batch")
    momentum: float = option(0.0, "heavy-ball momentum beta in [0, 1)")
    steps: int = option(20_000, "measured steps per replica")
    burn_in: int = option(2_000, "steps before measuring")
    replicas: int = option(16, "independent replicas run together")
    seed: int = option(0, "random seed (same seed, same numbers)")
    backend: str = option("numpy", "numba-compiled CPU kernel or PyTorch (CPU or CUDA)", choices=BACKENDS)
    device: str = option("cpu", "torch device, e.g. cuda (with --backend torch)")
    max_lag: int = option(30, "largest lag of the velocity and noise autocorrelations")
    snapshot_every: int = option(0, "keep w - w* (Hessian eigenbasis) every this many measured steps "
                                    "in arrays.npz (0: none)")

    def check(self) -> None:
        for name in ("N", "P"):
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name), 1)
        if self.outputs is not None:
            check_int("outputs", self.outputs, 1)
        if self.label_noise is not None:
            check_real("label_noise", self.label_noise, 0.0)
        if self.data is not None:
            for name in ("label_noise", "outputs"):
                if getattr(self, name) is not None:
                    raise UsageError(f"{name} describes the teacher and cannot be combined with data "
                                     f"(the file {self.data!r} brings its own labels)", name=name)
        check_positive("lr", self.lr)
        check_int("batch_size", self.batch_size, 1)
        check_momentum(self.momentum)
        check_int("steps", self.steps, 1)
        check_int("burn_in", self.burn_in, 0)
        check_int("replicas", self.replicas, 1)
        check_int("max_lag", self.max_lag, 0)
        check_int("snapshot_every", self.snapshot_every, 0)
        check_choice("backend", self.backend, BACKENDS)

    def problem(self) -> LinearRegression:
        """The data set these settings describe (loaded or generated; checked)."""
        if self.data is not None:
            return LinearRegression.from_npz(self.data, self.N, self.P)
        return LinearRegression.teacher_student(
            DEFAULT_N if self.N is None else self.N, DEFAULT_P if self.P is None else self.P,
            DEFAULT_LABEL_NOISE if self.label_noise is None else self.label_noise,
            outputs=1 if self.outputs is None else self.outputs, seed=self.seed)

    def simulation(self, problem: LinearRegression, sampling: str) -> SimulationConfig:
        """The simulator's settings for ``sampling`` on ``problem``, checked against the data."""
        config = SimulationConfig(
            lr=self.lr, batch_size=self.batch_size, momentum=self.momentum, sampling=sampling,
            steps=self.steps, burn_in=self.burn_in, replicas=self.replicas, seed=self.seed,
            backend=self.backend, device=self.device, max_lag=self.max_lag,
            full_covariance=problem.dim <= FULL_COVARIANCE_MAX_DIM, snapshot_every=self.snapshot_every)
        config.validate(problem)
        return config


@dataclasses.dataclass(frozen=True)
class LinearConfig(SGDSettings):
    """Settings of ``sgdnoise linear``: SGD on linear regression with one sampler."""

    experiment: ClassVar[str] = "linear"
    sampling: str = option("with-replacement", "sampling scheme (docs/theory.md §1)", choices=SAMPLINGS)

    def check(self) -> None:
        super().check()
        check_choice("sampling", self.sampling, SAMPLINGS)


@dataclasses.dataclass(frozen=True)
class DemoConfig(SGDSettings):
    """Settings of ``sgdnoise demo``: the same problem and SGD once per sampler (epoch vs with replacement)."""

    experiment: ClassVar[str] = "demo"
    lr: float = redefault(SGDSettings, "lr", 1.0)
    momentum: float = redefault(SGDSettings, "momentum", 0.9)
    steps: int = redefault(SGDSettings, "steps", 50_000)
    burn_in: int = redefault(SGDSettings, "burn_in", 5_000)
    samplings: tuple[str, ...] = option(("epoch", "with-replacement"), "the samplers compared",
                                        flag="--samplings", choices=SAMPLINGS)

    def check(self) -> None:
        super().check()
        if not self.samplings or not distinct(self.samplings):
            raise UsageError(f"samplings must be distinct samplers from {', '.join(SAMPLINGS)}; "
                             f"got {','.join(self.samplings)!r}", name="samplings")
        for sampling in self.samplings:
            check_choice("samplings", sampling, SAMPLINGS)
