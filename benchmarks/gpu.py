"""The CUDA paths, checked and timed on a GPU machine; one JSON line per part.

1. ``simulator``: the torch backend on CUDA against the numba kernel on the CPU, the same
   problem and seed: largest relative difference of Var theta (float64; must agree to
   round-off) on a small problem, then replica-steps per second of each on a large one
   (linear regression N = 1000, P = 2000, S = 10, R = 512), side by side in this run.
2. ``cli``: ``sgdnoise linear --backend torch --device cuda`` and ``sgdnoise net --device cuda``
   end to end (exit status and wall time), ``net`` also on the CPU for the ratio.

Run: ``python benchmarks/gpu.py [--quick]`` on a machine with CUDA (``benchmarks/README.md``
has the measured table).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np
import torch

from sgdnoise.dynamics.simulator import SimulationConfig, simulate
from sgdnoise.problems.linear import LinearRegression


def agreement() -> dict:
    problem = LinearRegression.teacher_student(20, 60, 0.25, seed=1)
    base = dict(lr=0.5, batch_size=5, momentum=0.5, sampling="epoch", steps=3000, burn_in=300, replicas=8,
                seed=3, max_lag=5)
    cpu = simulate(problem, SimulationConfig(**base, backend="numpy"), progress=False)
    gpu = simulate(problem, SimulationConfig(**base, backend="torch", device="cuda"), progress=False)
    diff = np.max(np.abs(gpu.var_theta.value / cpu.var_theta.value - 1))
    return {"max_relative_difference_var_theta": float(diff)}


def throughput(backend: str, device: str, steps: int) -> float:
    problem = LinearRegression.teacher_student(1000, 2000, 0.25, seed=0)
    config = SimulationConfig(lr=0.5, batch_size=10, steps=steps, burn_in=0, replicas=512, seed=1,
                              backend=backend, device=device)
    simulate(problem, SimulationConfig(**{**config.__dict__, "steps": 50}), progress=False)  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    simulate(problem, config, progress=False)
    if device == "cuda":
        torch.cuda.synchronize()
    return 512 * steps / (time.perf_counter() - start)


def command(args: list[str]) -> dict:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "sgdnoise", *args], capture_output=True, text=True)
    return {"status": done.returncode, "seconds": round(time.perf_counter() - start, 1),
            "stderr_tail": done.stderr[-300:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs")
    args = parser.parse_args()
    steps = 200 if args.quick else 1000
    print(json.dumps({"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
                      "cpu_threads": torch.get_num_threads()}), flush=True)
    gpu, cpu = throughput("torch", "cuda", steps), throughput("numpy", "cpu", steps)
    print(json.dumps({"benchmark": "simulator", **agreement(), "N": 1000, "P": 2000, "S": 10, "R": 512,
                      "cuda_replica_steps_per_s": round(gpu), "numba_cpu_replica_steps_per_s": round(cpu),
                      "ratio_cuda_over_cpu": round(gpu / cpu, 2)}), flush=True)
    linear = command(["linear", "--N", "200", "--P", "400", "--steps", "5000", "--backend", "torch",
                      "--device", "cuda", "--no-progress", "--out", "/tmp/gpu-linear"])
    net_args = ["net", "--pretrain-epochs", "10", "--burn-in-epochs", "10", "--epochs", "20",
                "--accuracy-seeds", "0", "--no-progress"]
    net_gpu = command([*net_args, "--device", "cuda", "--out", "/tmp/gpu-net"])
    net_cpu = command([*net_args, "--device", "cpu", "--out", "/tmp/cpu-net"])
    print(json.dumps({"benchmark": "cli", "linear_cuda": linear, "net_cuda": net_gpu, "net_cpu": net_cpu,
                      "net_ratio_cpu_over_cuda": round(net_cpu["seconds"] / max(net_gpu["seconds"], 1e-9), 2)}),
          flush=True)


if __name__ == "__main__":
    main()
