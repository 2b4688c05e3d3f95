"""The experiments a sweep can run: name -> config class, ``run``, ``save`` (docs/sweeps.md).

This is the low-level registry the sweep machinery uses in its workers (the
command layer builds its commands on top of the same functions).  A sweep may
also name an experiment outside the package as ``"package.module:ATTRIBUTE"``,
where the attribute is a :class:`SweepEntry`; it is imported in the worker, so
it works on every executor.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sgdnoise.config import ExperimentConfig
from sgdnoise.errors import UsageError


@dataclass(frozen=True)
class SweepEntry:
    """What a sweep needs of one experiment.

    Attributes
    ----------
    config_class : type
        The experiment's :class:`~sgdnoise.config.ExperimentConfig`.
    run : callable
        ``run(config, progress, checkpoints) -> result``.
    save : callable
        ``save(result, folder)``: writes the result folder (``summary.json`` last).
    validate : callable, optional
        ``validate(config)``: checks that need the data (stability, batch against P), run for
        every cell before any work; raises :class:`UsageError`.
    """

    config_class: type[ExperimentConfig]
    run: Callable[..., Any]
    save: Callable[..., None]
    validate: Callable[[Any], None] | None = None


def _validate_linear(config: Any) -> None:
    problem = config.problem()
    config.simulation(problem, config.sampling)


def _validate_demo(config: Any) -> None:
    problem = config.problem()
    for sampling in config.samplings:
        config.simulation(problem, sampling)


def builtin() -> dict[str, SweepEntry]:
    """The package's experiments, by name (imported on first use)."""
    from sgdnoise.experiments import balance, ivfr, net
    from sgdnoise.experiments.linear import demo
    from sgdnoise.experiments.linear import run as linear
    from sgdnoise.experiments.linear.config import DemoConfig, LinearConfig
    from sgdnoise.report import balance as balance_report
    from sgdnoise.report import ivfr as ivfr_report
    from sgdnoise.report import linear as linear_report
    from sgdnoise.report import net as net_report

    return {
        "linear": SweepEntry(LinearConfig, linear.run, linear_report.save_linear, _validate_linear),
        "demo": SweepEntry(DemoConfig, demo.run, linear_report.save_comparison, _validate_demo),
        "balance": SweepEntry(balance.BalanceConfig, balance.run, balance_report.save),
        "net": SweepEntry(net.NetConfig, net.run, net_report.save),
        "ivfr": SweepEntry(ivfr.IvfrConfig, ivfr.run, ivfr_report.save),
    }


def lookup(name: str) -> SweepEntry:
    """The entry of experiment ``name`` (a built-in name or ``"module:ATTRIBUTE"``)."""
    if ":" in name:
        module, _, attribute = name.partition(":")
        try:
            entry = getattr(importlib.import_module(module), attribute)
        except (ImportError, AttributeError) as exc:
            raise UsageError(f"experiment {name!r} cannot be imported: {exc}", name="experiment") from None
        if not isinstance(entry, SweepEntry):
            raise UsageError(f"experiment {name!r} is not a SweepEntry", name="experiment")
        return entry
    entries = builtin()
    if name not in entries:
        raise UsageError(f"key 'experiment' must be one of {', '.join(entries)} (or 'module:ATTRIBUTE'); "
                         f"got {name!r}", name="experiment")
    return entries[name]
