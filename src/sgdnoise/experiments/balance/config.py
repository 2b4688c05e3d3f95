"""The settings of ``sgdnoise balance``: one frozen, checked config (docs/balance.md)."""
from __future__ import annotations

import os
from dataclasses import dataclass

from sgdnoise._spec import check_int, check_positive, check_real
from sgdnoise.config import ExperimentConfig, option
from sgdnoise.dynamics.balance_kernels import N_INTEGRALS
from sgdnoise.errors import UsageError


@dataclass(frozen=True)
class BalanceConfig(ExperimentConfig):
    """Everything that defines a ``balance`` run (recorded under ``config`` in summary.json).

    Exactly one of ``T`` and ``lr`` is given; the other follows from ``T = lr / batch``.
    ``time`` (in units of ``lr`` x steps) defaults to 40 relaxation times of ``v``
    (:func:`sgdnoise.experiments.balance.analysis.relaxation_time`).  Every check names
    the field; whether ``data`` can be read, and its moments, are checked at the start
    of the run.
    """

    experiment = "balance"

    depth: int = option(1, "D >= 0: layers per path minus one")
    width: int = option(1, "d >= 1 parallel paths")
    T: float | None = option(None, "temperature lr/batch (or give --lr)", flag="--T")
    lr: float | None = option(None, "learning rate (T = lr / batch)")
    batch: int = option(1, "batch size S")
    weight_decay: float = option(0.0, "gamma in the loss (vx - y)^2 + gamma |theta|^2")
    slope: float = option(1.0, "teacher slope k in y = k x + eps")
    noise_std: float = option(1.0, "std of the label noise eps")
    x_std: float = option(0.1, "std of the input x")
    data: str | None = option(None, "file of pairs x y (.npz with x, y; or two columns) instead of "
                                    "the teacher")
    replicas: int = option(10_000, "independent SGD runs")
    time: float | None = option(None, "duration in units of lr x steps (default 40 relaxation times)")
    records: int = option(20, "snapshots along the run")
    balance_replicas: int = option(2_000, "replicas of the imbalance-decay runs")
    imbalance: float = option(0.5, "initial log-ratio of the outer layer magnitudes in those runs")
    sde: bool = option(True, "run the SDE comparison runs (--no-sde skips them)")
    tol: float = option(0.003, "step control of the SDE integrator (weak error O(tol))")
    seed: int = option(0, "random seed")

    def check(self) -> None:
        """Raise :class:`UsageError` naming the field for any invalid setting."""
        if (self.T is None) == (self.lr is None):
            given = "both" if self.T is not None else "neither"
            raise UsageError(f"T must be given, or lr, but not both (T = lr / batch); got {given}", name="T")
        for name in ("T", "lr", "time"):
            if getattr(self, name) is not None:
                check_positive(name, getattr(self, name))
        check_int("depth", self.depth, 0)
        check_int("width", self.width, 1)
        for name, low in (("batch", 1), ("replicas", 10), ("records", 2), ("balance_replicas", 2),
                          ("seed", 0)):
            check_int(name, getattr(self, name), low)
        check_real("weight_decay", self.weight_decay, 0.0)
        check_real("slope", self.slope)
        check_positive("x_std", self.x_std)
        check_positive("imbalance", self.imbalance)
        check_real("tol", self.tol, 0.0, 1.0, low_open=True)
        check_real("noise_std", self.noise_std, 0.0)
        self._check_record_memory()
        if self.data is None and self.noise_std == 0:
            raise UsageError("noise_std must be > 0 for the teacher: noise_std = 0 makes y a deterministic "
                             "multiple of x and Delta = alpha1*alpha3 - alpha2^2 = 0; got 0", name="noise_std")

    def _check_record_memory(self) -> None:
        """Refuse records that cannot fit in memory (a MemoryError traceback once the runs had started).

        Each record keeps, per replica, ``d`` path outputs and, per layer pair, the imbalance, two
        products and ``N_INTEGRALS`` running integrals (:class:`sgdnoise.dynamics.balance_sgd.BalanceRun`);
        SGD and the SDE of the density and imbalance runs are held at once.
        """
        per_replica = self.width + self.depth * (3 + N_INTEGRALS)
        replicas = 2 * self.replicas + (2 * self.balance_replicas if self.depth >= 1 else 0)
        need = 8.0 * (self.records + 1) * replicas * per_replica
        try:
            have = float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
        except (ValueError, OSError, AttributeError):  # no sysconf: nothing to compare with
            return
        if need > 0.5 * have:
            raise UsageError(f"records = {self.records} with replicas = {self.replicas} (balance_replicas = "
                             f"{self.balance_replicas}) needs about {need / 2**30:.3g} GiB for the records, more than "
                             f"half of this machine's {have / 2**30:.3g} GiB; lower records or replicas",
                             name="records")

    @property
    def temperature(self) -> float:
        """``T = lr / batch``."""
        return self.T if self.T is not None else self.lr / self.batch

    @property
    def learning_rate(self) -> float:
        """``lr = T batch``."""
        return self.lr if self.lr is not None else self.T * self.batch
