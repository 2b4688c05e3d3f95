"""Experiments: one package per experiment, each ``config`` (frozen, validated) and ``run(config) -> Result``.

A run does no I/O but progress; the result is written by :mod:`sgdnoise.report`
and the command line glue lives in :mod:`sgdnoise.commands`.
"""
