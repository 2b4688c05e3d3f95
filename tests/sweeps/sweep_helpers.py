"""Helpers of the sweep tests: tiny linear sweeps, the environment of subprocesses and workers."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"

#: Tiny linear cells (N=6, P=24, 300 steps): a few seconds each.
TINY = """experiment = "linear"
seeds = {seeds}
[base]
N = 6
P = 24
steps = {steps}
burn_in = 100
replicas = 4
max_lag = 5
[grid]
batch_size = {batches}
"""


def tiny_spec(tmp_path: Path, seeds: int = 2, batches: str = "[2, 4]", steps: int = 300,
              name: str = "sweep.toml") -> Path:
    path = tmp_path / name
    path.write_text(TINY.format(seeds=seeds, batches=batches, steps=steps))
    return path


def env() -> dict[str, str]:
    """The environment of a subprocess (and of spawned workers): this worktree's src and the toy module."""
    paths = [str(SRC), str(HERE), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


def sgdnoise(*args: object, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sgdnoise", *map(str, args)], env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)
