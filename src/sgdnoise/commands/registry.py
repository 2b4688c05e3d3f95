"""Every command of ``sgdnoise``: the experiments (built from their config classes) and the others.

A new experiment adds its :class:`~sgdnoise.commands.Experiment` to
:data:`EXPERIMENTS`; a new reproduction goes into the ``REPRODUCTIONS`` of its
command module, listed in :data:`sgdnoise.commands.reproduce.SOURCES`.
"""
from __future__ import annotations

from sgdnoise.commands import balance, ivfr, linear, net, reproduce, sweep

#: Experiment commands, in the order ``sgdnoise --help`` lists them (each also runs from a TOML file).
EXPERIMENTS = [linear.LINEAR, linear.DEMO, balance.EXPERIMENT, net.EXPERIMENT, ivfr.EXPERIMENT]
#: Modules with ``add_parser(subparsers)`` for the other commands.
OTHER_COMMANDS = [reproduce, sweep]
