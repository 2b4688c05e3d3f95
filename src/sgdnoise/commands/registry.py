"""Every command of ``sgdnoise``: the experiments (built from their config classes) and the others.

A new experiment adds its :class:`~sgdnoise.commands.Experiment` to
:data:`EXPERIMENTS`; a new reproduction goes into the ``REPRODUCTIONS`` of its
command module, listed in :data:`REPRODUCTION_SOURCES`.
"""
from __future__ import annotations

from sgdnoise.commands import net
from sgdnoise.experiments import balance, demo, linear, reproduce

#: Experiment commands, in the order ``sgdnoise --help`` lists them (each also runs from a TOML file).
EXPERIMENTS: list = [net.EXPERIMENT]
#: Modules with ``add_parser(subparsers)`` for commands not (yet) built from a config class.
OTHER_COMMANDS = [linear, demo, reproduce, balance]
