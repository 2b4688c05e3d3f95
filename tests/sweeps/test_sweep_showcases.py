"""The sweep showcases are registered reproductions; the crossing measurement finds a known crossing."""
from __future__ import annotations

import numpy as np

from sgdnoise.commands.reproduce import registry
from sgdnoise.sweeps.showcases import crossing


def test_registered():
    entries = registry()
    assert {"sweep-lambda-cross", "sweep-gross-fig5", "sweep-kuehn-rosenow-net"} <= set(entries)


def test_crossing_of_a_known_curve():
    lam = np.geomspace(1e-3, 1e-1, 60)
    ratio = 1 / (1 + 0.01 / lam)  # reaches 1/2 at lambda = 0.01
    assert abs(crossing(lam[::-1], ratio[::-1]) / 0.01 - 1) < 0.02
    assert np.isnan(crossing(lam, np.full(60, 0.1)))


def test_sweep_registry_matches_the_commands():
    from sgdnoise.commands.registry import EXPERIMENTS
    from sgdnoise.sweeps.registry import builtin

    commands = {e.name: e for e in EXPERIMENTS}
    for name, entry in builtin().items():
        assert commands[name].config_class is entry.config_class
        assert commands[name].run is entry.run and commands[name].save is entry.save


def test_dask_and_submitit_only_in_the_executors():
    import ast
    from pathlib import Path

    src = Path(__file__).resolve().parents[2] / "src" / "sgdnoise"
    for path in src.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                if name.split(".")[0] in ("dask", "distributed", "submitit"):
                    assert path.name == "executors.py", f"{path} imports {name}"


def test_stack_pads_missing_and_shorter_arrays():
    from sgdnoise.sweeps.collect import _stack

    out = _stack([np.asarray(np.nan), np.arange(3.0), np.arange(2.0)])
    assert out.shape == (3, 3) and np.isnan(out[0]).all() and np.isnan(out[2, 2]) and out[1, 2] == 2
