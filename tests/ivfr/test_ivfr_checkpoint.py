"""``sgdnoise ivfr`` killed with SIGKILL mid-run and restarted is bit-identical to an uninterrupted run."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from sweep_helpers import env

TINY = ["--N", "4", "--P", "30", "--outputs", "2", "--hidden", "2", "--burn-in", "500", "--replicas", "2",
        "--seed", "3", "--no-progress"]
#: (arguments, checkpoint file, a stretch of steps long enough to be killed in)
MODELS = {
    "two-layer": (["--model", "two-layer", "--steps", "30000", "--snapshot-every", "50"], "simulation.pkl"),
    "mlp": (["--model", "mlp", "--width", "0.1", "--steps", "4000", "--snapshot-every", "50", "--replicas", "1"],
            "mlp-0-window.pt"),
}


def command(model, out, *extra):
    return [sys.executable, "-m", "sgdnoise", "ivfr", *TINY, *MODELS[model][0], *extra, "--out", str(out)]


def run_env(seconds: str = "0"):
    return {**env(), "SGDNOISE_CHECKPOINT_SECONDS": seconds}


@pytest.mark.parametrize("model", list(MODELS))
def test_sigkill_and_restart_is_bit_identical(tmp_path, model):
    killed = tmp_path / "killed"
    process = subprocess.Popen(command(model, killed), env=run_env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    checkpoint = killed / "checkpoints" / MODELS[model][1]
    deadline = time.time() + 120
    while not checkpoint.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)  # a little further
    assert process.poll() is None, f"the run ended before it was killed: {process.communicate()[1]}"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert checkpoint.exists() and not (killed / "arrays.npz").exists()
    # another config's checkpoint is refused in one line, naming the setting
    other = subprocess.run(command(model, killed, "--lr", "0.05"), env=run_env(), capture_output=True,
                           text=True, timeout=300)
    assert other.returncode == 2 and "(lr)" in other.stderr and len(other.stderr.strip().splitlines()) == 1
    assert checkpoint.exists()
    resumed = subprocess.run(command(model, killed), env=run_env(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    reference = subprocess.run(command(model, tmp_path / "whole"), env=run_env("1e9"), capture_output=True,
                               text=True, timeout=300)
    assert reference.returncode == 0, reference.stderr
    with np.load(killed / "arrays.npz") as a, np.load(tmp_path / "whole" / "arrays.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for name in a.files:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    summaries = [json.loads((folder / "summary.json").read_text()) for folder in (killed, tmp_path / "whole")]
    assert summaries[0]["layers"] == summaries[1]["layers"] and summaries[0]["theory"] == summaries[1]["theory"]
    assert not (killed / "checkpoints").exists()  # removed once complete
