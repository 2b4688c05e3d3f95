"""Checkpoints of a ``balance`` run: finished simulations and the state of the running one.

One file, ``<checkpoints>/balance.pkl`` (:class:`sgdnoise.dynamics.checkpoint.Checkpoint`:
atomic writes, keyed by the complete config, another config's refused), holds the
simulations that finished (``sgd``, ``sde``, ``balance-sgd``, ``balance-sde``,
``gradient-flow``) and the full state of the one in progress, saved every
``SGDNOISE_CHECKPOINT_SECONDS`` (default 60 s), when a simulation finishes and when a stop
request ends the run.  A restarted run skips the finished simulations, continues the
interrupted one from its state, and gives numbers bit-identical to an uninterrupted run;
the file is deleted once the run completes (docs/balance.md, "Checkpoints").
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sgdnoise.dynamics.balance_sgd import BalanceRun
from sgdnoise.dynamics.checkpoint import Checkpoint
from sgdnoise.interrupts import announce_phase


class _Phase:
    """The :class:`~sgdnoise.dynamics.balance_sgd.Resumable` of one simulation of the run."""

    def __init__(self, owner: RunCheckpoint, name: str, state: dict[str, Any] | None) -> None:
        self.owner, self.name, self.state = owner, name, state

    def due(self) -> bool:
        return self.owner.file.due()

    def save(self, state: dict[str, Any]) -> None:
        self.owner.file.save({"finished": self.owner.finished, "partial": (self.name, state)})


class RunCheckpoint:
    """Finished simulations and the partial one of a run, or nothing without a folder."""

    def __init__(self, folder: Path | None, key: dict[str, Any]) -> None:
        self.file = Checkpoint(Path(folder) / "balance.pkl", key) if folder is not None else None
        saved = self.file.load() if self.file is not None else None
        self.finished: dict[str, BalanceRun] = saved["finished"] if saved else {}
        self.partial: tuple[str, dict[str, Any]] | None = saved["partial"] if saved else None

    def simulate(self, name: str, simulation: Callable[[_Phase | None], BalanceRun]) -> BalanceRun:
        """The finished run ``name``, or ``simulation(checkpoint)`` resumed from its saved state.

        Announces the phase ``name`` (:func:`sgdnoise.interrupts.announce_phase`) when it runs.
        """
        if name in self.finished:
            return self.finished[name]
        announce_phase(name)
        if self.file is None:
            return simulation(None)
        state = self.partial[1] if self.partial is not None and self.partial[0] == name else None
        result = simulation(_Phase(self, name, state))
        if result.interrupted_at is None:
            self.finished[name] = result
            self.partial = None
            self.file.save({"finished": self.finished, "partial": None})
        return result

    def remove(self) -> None:
        """Delete the checkpoint (the run completed)."""
        if self.file is not None:
            self.file.remove()
