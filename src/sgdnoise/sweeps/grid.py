"""Sweep specifications: a base config, grid and zip axes, seeds -> the cells (docs/sweeps.md).

A ``SWEEP.toml``::

    experiment = "linear"          # any sweepable experiment (sgdnoise.sweeps.registry)
    seeds = 3                      # seeds seed0..seed0+2 (seed0 = [base] seed or 0), or a list [0, 5, 7]
    [base]                         # any keys of that experiment's config
    N = 6
    [grid]                         # Cartesian product of these lists
    batch_size = [2, 4]
    [zip]                          # lists of equal length, zipped (one axis, named by the first key)
    lr = [0.1, 0.2]
    momentum = [0.0, 0.5]
    [submitit]                     # optional: parameters of submitit's executor (e.g. slurm_partition)

Every cell's config is built and checked before any work.  A cell's id is the
first 16 hex digits of the SHA-256 of the canonical JSON of
``{"experiment": NAME, "config": config.to_mapping()}``: the complete config,
so a changed config never reuses an old record.
"""
from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sgdnoise.config import ExperimentConfig, read_toml
from sgdnoise.errors import UsageError
from sgdnoise.sweeps.registry import SweepEntry, lookup

TOP_KEYS = ("experiment", "seeds", "base", "grid", "zip", "submitit")


def cell_id(experiment: str, mapping: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of ``{experiment, config}``, first 16 hex digits."""
    text = json.dumps({"experiment": experiment, "config": mapping}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Cell:
    """One config of a sweep: its position on the axes and its config."""

    id: str
    experiment: str
    point: dict[str, Any]
    mapping: dict[str, Any]
    index: tuple[int, ...] = ()


@dataclass(frozen=True)
class SweepSpec:
    """A parsed ``SWEEP.toml`` (see the module docstring)."""

    experiment: str
    base: dict[str, Any]
    grid: dict[str, list[Any]]
    zip: dict[str, list[Any]] = field(default_factory=dict)
    seeds: list[int] | None = None
    submitit: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, table: dict[str, Any]) -> "SweepSpec":
        """The spec of a TOML table; one-line :class:`UsageError` naming any bad key."""
        unknown = sorted(set(table) - set(TOP_KEYS))
        if unknown:
            raise UsageError(f"unknown key {unknown[0]!r} in the sweep file; allowed: {', '.join(TOP_KEYS)}",
                             name=unknown[0])
        if not isinstance(table.get("experiment"), str):
            raise UsageError("key 'experiment' must name an experiment (e.g. experiment = \"linear\")",
                             name="experiment")
        tables = {}
        for name in ("base", "grid", "zip", "submitit"):
            tables[name] = table.get(name, {})
            if not isinstance(tables[name], dict):
                raise UsageError(f"[{name}] must be a table; got {tables[name]!r}", name=name)
        for name in ("grid", "zip"):
            for key, values in tables[name].items():
                if not isinstance(values, list) or not values:
                    raise UsageError(f"[{name}] {key} must be a non-empty list; got {values!r}", name=key)
        lengths = {len(v) for v in tables["zip"].values()}
        if len(lengths) > 1:
            raise UsageError(f"the lists of [zip] must have equal lengths; got "
                             f"{', '.join(f'{k}: {len(v)}' for k, v in tables['zip'].items())}", name="zip")
        clash = sorted(set(tables["grid"]) & set(tables["zip"]))
        if clash:
            raise UsageError(f"key {clash[0]!r} is in both [grid] and [zip]", name=clash[0])
        return cls(table["experiment"], tables["base"], tables["grid"], tables["zip"],
                   _seeds(table.get("seeds"), tables["base"].get("seed", 0)),
                   tables["submitit"])

    @classmethod
    def read(cls, path: str | Path) -> "SweepSpec":
        """The spec of a ``SWEEP.toml`` file."""
        return cls.from_mapping(read_toml(path))

    def to_mapping(self) -> dict[str, Any]:
        """The TOML table this spec was read from (what ``sweep.toml`` in the sweep folder holds)."""
        table: dict[str, Any] = {"experiment": self.experiment}
        if self.seeds is not None:
            table["seeds"] = list(self.seeds)
        for name in ("base", "grid", "zip", "submitit"):
            if getattr(self, name):
                table[name] = getattr(self, name)
        return table

    @property
    def entry(self) -> SweepEntry:
        return lookup(self.experiment)

    def axes(self) -> dict[str, list[Any]]:
        """The swept keys with their values, in order: grid keys, the zip axis, then ``seed``.

        The zip axis is named after its first key; the other zip keys run along it.
        """
        axes = dict(self.grid)
        if self.zip:
            first = next(iter(self.zip))
            axes[first] = self.zip[first]
        if self.seeds is not None:
            axes["seed"] = list(self.seeds)
        return axes

    def cells(self) -> list[Cell]:
        """Every cell, its config built and checked (one-line :class:`UsageError` naming the key)."""
        entry = self.entry
        ranges = [range(len(v)) for v in self.grid.values()]
        ranges += [range(len(next(iter(self.zip.values()))))] if self.zip else []
        ranges += [range(len(self.seeds))] if self.seeds is not None else []
        cells, seen = [], {}
        for index in itertools.product(*ranges):
            point = dict(zip(self.grid, (v[i] for v, i in zip(self.grid.values(), index))))
            if self.zip:
                point.update({k: v[index[len(self.grid)]] for k, v in self.zip.items()})
            if self.seeds is not None:
                point["seed"] = self.seeds[index[-1]]
            config = self._config(entry, point)
            mapping = config.to_mapping()
            cid = cell_id(self.experiment, mapping)
            if cid in seen:
                raise UsageError(f"cells {seen[cid]} and {point} have the same config", name="grid")
            seen[cid] = point
            cells.append(Cell(cid, self.experiment, point, mapping, tuple(index)))
        return cells

    def _config(self, entry: SweepEntry, point: dict[str, Any]) -> ExperimentConfig:
        where = ", ".join(f"{k}={v!r}" for k, v in point.items()) or "the base config"
        try:
            config = entry.config_class.from_mapping({**self.base, **point})
            if entry.validate is not None:
                entry.validate(config)
        except UsageError as exc:
            raise UsageError(f"cell {where}: {exc}", name=exc.name) from None
        return config


def _seeds(value: Any, seed0: Any) -> list[int] | None:
    """``seeds = n``: seed0 .. seed0 + n - 1 (seed0 the base seed, default 0); or the list given."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise UsageError(f"seeds must be at least 1 (a number of seeds) or a list; got {value}", name="seeds")
        return list(range(seed0, seed0 + value)) if isinstance(seed0, int) else list(range(value))
    if isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        if len(set(value)) < len(value):
            raise UsageError(f"seeds must be distinct; got {value}", name="seeds")
        return list(value)
    raise UsageError(f"seeds must be a number of seeds or a list of integers; got {value!r}", name="seeds")
