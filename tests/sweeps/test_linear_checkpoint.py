"""``sgdnoise linear`` killed with SIGKILL mid-run and restarted is bit-identical to an uninterrupted run."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np

from sweep_helpers import env

ARGS = ["linear", "--N", "6", "--P", "24", "--steps", "400000", "--burn-in", "1000", "--replicas", "4",
        "--sampling", "epoch", "--batch", "5", "--max-lag", "5", "--snapshot-every", "20000", "--no-progress"]


def command(out, *extra):
    return [sys.executable, "-m", "sgdnoise", *ARGS, *extra, "--out", str(out)]


def run_env():
    return {**env(), "SGDNOISE_CHECKPOINT_SECONDS": "0"}  # a checkpoint after every chunk


def test_sigkill_and_restart_is_bit_identical(tmp_path):
    killed = tmp_path / "killed"
    process = subprocess.Popen(command(killed), env=run_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    checkpoint = killed / "checkpoints" / "simulation-epoch.pkl"
    deadline = time.time() + 120
    while not checkpoint.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)  # a few chunks further
    assert process.poll() is None, f"the run ended before it was killed: {process.communicate()[1]}"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert checkpoint.exists() and not (killed / "arrays.npz").exists()
    other = subprocess.run(command(killed, "--lr", "0.05"), env=run_env(), capture_output=True, text=True,
                           timeout=300)
    assert other.returncode == 2 and "(lr)" in other.stderr and len(other.stderr.strip().splitlines()) == 1
    assert checkpoint.exists()
    resumed = subprocess.run(command(killed), env=run_env(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    reference = subprocess.run(command(tmp_path / "whole"), env={**env(), "SGDNOISE_CHECKPOINT_SECONDS": "1e9"},
                               capture_output=True, text=True, timeout=300)
    assert reference.returncode == 0, reference.stderr
    with np.load(killed / "arrays.npz") as a, np.load(tmp_path / "whole" / "arrays.npz") as b:
        assert sorted(a.files) == sorted(b.files) and "snapshots" in a.files
        for name in a.files:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert not checkpoint.exists() and not (killed / "checkpoints").exists()  # removed once complete
