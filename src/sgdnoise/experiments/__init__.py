"""Experiments: one module per command, each config -> run -> results folder.

``COMMAND_MODULES`` lists the modules that provide ``add_parser(subparsers)``
for :mod:`sgdnoise.cli`; a new command adds its module here.
"""
from sgdnoise.experiments import balance, demo, linear, net, reproduce

COMMAND_MODULES = [linear, demo, reproduce, balance, net]
