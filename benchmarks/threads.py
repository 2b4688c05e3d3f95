"""Torch threads under load: ``sgdnoise net``'s default against one thread and torch's own default.

The same small ``net`` run (MLP on 1000 digits) three times -- with the default thread count
(no ``--threads``), with ``--threads 1`` and with torch's own default (one thread per core) --
while a busy-loop process holds one core, as another job on a shared machine would.  Each
run's ``wall_seconds`` (summary.json; the computation without the imports) is compared.
Prints one JSON line; target: the default within 1.5x of the better of the other two.

Usage: ``python benchmarks/threads.py [--repeats 1]``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
RUN = ["net", "--model", "mlp", "--data", "digits", "--train-examples", "1000", "--batch", "32",
       "--pretrain-epochs", "8", "--burn-in-epochs", "2", "--epochs", "8", "--k", "10",
       "--noise-epochs", "4", "--slq-vectors", "2", "--slq-steps", "20", "--trace-samples", "4",
       "--accuracy-seeds", "1", "--no-progress"]
TARGET = 1.5


def torch_default_threads() -> int:
    """torch.get_num_threads() of a fresh process: torch's own default."""
    code = "import torch; print(torch.get_num_threads())"
    return int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def timed_run(extra: list[str], folder: Path) -> float:
    """``wall_seconds`` of one ``sgdnoise net`` run with ``extra`` options."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    subprocess.run([sys.executable, "-m", "sgdnoise", *RUN, *extra, "--out", str(folder)], env=env,
                   check=True, capture_output=True)
    return float(json.loads((folder / "summary.json").read_text())["wall_seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1, help="runs per variant; the best counts (default: 1)")
    args = parser.parse_args()
    cores = torch_default_threads()
    variants = {"default": [], "one_thread": ["--threads", "1"], "torch_default": ["--threads", str(cores)]}
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(busy.pid, {sorted(os.sched_getaffinity(0))[0]})
        with tempfile.TemporaryDirectory() as tmp:
            seconds = {name: min(timed_run(extra, Path(tmp) / f"{name}{i}") for i in range(args.repeats))
                       for name, extra in variants.items()}
    finally:
        busy.kill()
        busy.wait()
    best_other = min(seconds["one_thread"], seconds["torch_default"])
    ratio = seconds["default"] / best_other
    print(json.dumps({"benchmark": "threads", "model": "mlp", "n_train": 1000, "busy_loop_cores": 1,
                      "torch_default_threads": cores, **{f"{k}_s": round(v, 2) for k, v in seconds.items()},
                      "torch_default_over_default": round(seconds["torch_default"] / seconds["default"], 2),
                      "default_over_best": round(ratio, 2), "target_met": ratio <= TARGET}))


if __name__ == "__main__":
    main()
