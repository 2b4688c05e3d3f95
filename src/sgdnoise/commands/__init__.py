"""Command line glue, one module per command: flags -> config -> run -> report -> exit status.

Every experiment command is an :class:`Experiment`: a config class (its flags,
defaults and checks), a ``run(config, progress) -> result`` that does no I/O
but progress, and the report functions that write and print the result.
:data:`EXPERIMENTS` lists them; ``sgdnoise run CONFIG.toml`` runs any of them
from a config file (``experiment = NAME`` plus the config's keys).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sgdnoise.config import ExperimentConfig
from sgdnoise.interrupts import announce_phase, exit_status_after_stop
from sgdnoise.report.folder import ResultFolder


@dataclass(frozen=True)
class Experiment:
    """One experiment command.

    Attributes
    ----------
    config_class : type
        The experiment's :class:`~sgdnoise.config.ExperimentConfig`; its ``experiment`` is the command name.
    help : str
        One line for ``sgdnoise --help``.
    run : callable
        ``run(config, progress, checkpoints) -> result``: the computation; no I/O but progress and,
        for experiments that resume, checkpoints in the folder ``checkpoints`` (a Path).
    save : callable
        ``save(result, folder)``: writes figures, arrays and ``summary.json`` into a :class:`ResultFolder`.
    show : callable
        ``show(result, folder)``: what the terminal shows once the folder is written.
    status : callable
        ``status(result) -> int``: 0 when the run completed, 1 when it stopped early (diverged, interrupted).
    default_out : str
        The output folder when ``--out`` is not given.
    """

    config_class: type[ExperimentConfig]
    help: str
    run: Callable[[Any, bool, Path], Any]
    save: Callable[[Any, ResultFolder], None]
    show: Callable[[Any, ResultFolder], None]
    status: Callable[[Any], int]
    default_out: str

    @property
    def name(self) -> str:
        return self.config_class.experiment


def execute(experiment: Experiment, config: ExperimentConfig, out: Path | str, progress: bool) -> int:
    """Run ``config`` into the folder ``out``: check the folder first, then run, save and show.

    The folder is checked (and what an earlier run left there cleared) before any
    work starts; a result that stopped early is written all the same, with its status.
    A run refused at its start (:class:`UsageError`: a setting that does not fit the data)
    leaves no trace: the folder is created and cleared only at the first write.
    """
    folder = ResultFolder(out, "--out").prepare()
    result = experiment.run(config, progress, folder.path / "checkpoints")
    announce_phase("writing")
    experiment.save(result, folder)
    experiment.show(result, folder)
    return max(experiment.status(result), exit_status_after_stop())


@dataclass(frozen=True)
class Reproduction:
    """A named figure reproduction of a seed paper (``sgdnoise reproduce NAME``).

    Attributes
    ----------
    description : str
        One line: paper, figure, what is shown.
    run : callable
        ``run(seed, progress) -> result``: the computation; no I/O but progress.
    save : callable
        ``save(result, folder)``: figures, arrays and ``summary.json`` with the numbers shown.
    status : callable
        ``status(result) -> int``, as for :class:`Experiment` (default: always 0).
    """

    description: str
    run: Callable[[int, bool], Any]
    save: Callable[[Any, ResultFolder], None]
    status: Callable[[Any], int] = lambda result: 0
