"""``sgdnoise balance`` killed with SIGKILL mid-run and restarted is bit-identical to an uninterrupted run."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SRC = Path(__file__).resolve().parents[2] / "src"
ARGS = ["balance", "--depth", "1", "--width", "2", "--T", "0.05", "--replicas", "100", "--balance-replicas", "50",
        "--time", "60", "--records", "8", "--tol", "1e-3", "--no-progress"]


def command(out, *extra):
    return [sys.executable, "-m", "sgdnoise", *ARGS, *extra, "--out", str(out)]


def run_env(tmp_path, every="0"):
    return {**os.environ, "PYTHONPATH": str(SRC), "SGDNOISE_CHECKPOINT_SECONDS": every,
            "SGDNOISE_PHASE_FILE": str(tmp_path / "phases.txt")}


def _kill_during(process, phases: Path, phase: str, checkpoint: Path) -> None:
    """SIGKILL once ``phase`` has begun and saved a checkpoint of its own state."""
    deadline = time.time() + 240
    while process.poll() is None and time.time() < deadline:
        if phases.exists() and phase in phases.read_text().split() and checkpoint.exists():
            break
        time.sleep(0.02)
    begun = checkpoint.stat().st_mtime_ns
    while process.poll() is None and checkpoint.stat().st_mtime_ns == begun and time.time() < deadline:
        time.sleep(0.01)  # a save after the phase began: it holds the partial state
    assert process.poll() is None, f"the run ended before it was killed: {process.communicate()[1]}"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


def test_sigkill_and_restart_is_bit_identical(tmp_path):
    killed = tmp_path / "killed"
    checkpoint = killed / "checkpoints" / "balance.pkl"
    env = run_env(tmp_path)
    process = subprocess.Popen(command(killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _kill_during(process, tmp_path / "phases.txt", "balance-sde", checkpoint)
    assert checkpoint.exists() and not (killed / "samples.npz").exists()
    other = subprocess.run(command(killed, "--seed", "1"), env=env, capture_output=True, text=True, timeout=300)
    assert other.returncode == 2 and "(seed)" in other.stderr and len(other.stderr.strip().splitlines()) == 1
    (tmp_path / "phases.txt").unlink()
    resumed = subprocess.run(command(killed), env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    rerun = (tmp_path / "phases.txt").read_text().split()
    assert rerun[0] == "balance-sde" and "sgd" not in rerun and "balance-sgd" not in rerun  # finished: not rerun
    whole = tmp_path / "whole"
    reference = subprocess.run(command(whole), env=run_env(tmp_path, "1e9"), capture_output=True, text=True,
                               timeout=300)
    assert reference.returncode == 0, reference.stderr
    with np.load(killed / "samples.npz") as a, np.load(whole / "samples.npz") as b:
        assert sorted(a.files) == sorted(b.files) and "balance_sde_v" in a.files
        for name in a.files:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    first, second = (json.loads((f / "summary.json").read_text()) for f in (killed, whole))
    assert first["balance_rate"] == second["balance_rate"] and first["sgd"] == second["sgd"]
    assert not checkpoint.exists() and not (killed / "checkpoints").exists()  # removed once complete
