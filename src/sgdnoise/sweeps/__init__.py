"""Sweeps: many configs of one experiment on a laptop or a cluster (docs/sweeps.md).

- :mod:`.grid`: :class:`SweepSpec` (``SWEEP.toml``) -> cells, each checked before any work;
- :mod:`.store`: one record per cell, atomic writes, :func:`status`;
- :mod:`.executors`: :func:`run_cell` and the local / Dask / submitit backends;
- :mod:`.runner`: :func:`run_sweep`;
- :mod:`.collect`: :func:`collect` -> one ``xarray.Dataset``;
- :mod:`.registry`: the experiments a sweep can run.
"""
from sgdnoise.sweeps.collect import collect
from sgdnoise.sweeps.grid import Cell, SweepSpec, cell_id
from sgdnoise.sweeps.runner import run_sweep
from sgdnoise.sweeps.store import SweepStatus, status

__all__ = ["Cell", "SweepSpec", "SweepStatus", "cell_id", "collect", "run_sweep", "status"]
