"""Real processes, real signals: ``sgdnoise net`` stopped by SIGINT/SIGTERM keeps what it measured and resumes.

Each test starts ``python -m sgdnoise net ...`` (tiny MLP), waits for the announced phase
(``SGDNOISE_PHASE_FILE``), sends the signal and checks the folder, status and exit code.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_signals import SRC, signal_at, start

BASE = {"--model": "mlp", "--width": 0.25, "--train-examples": 200, "--batch": 20, "--pretrain-epochs": 2,
        "--burn-in-epochs": 1, "--epochs": 4, "--k": 4, "--noise-epochs": 3, "--slq-vectors": 1,
        "--slq-steps": 4, "--trace-samples": 2, "--accuracy-seeds": 0, "--checkpoint-every": 15}


def net_args(out, **changes) -> list:
    settings = {**BASE, **{f"--{k.replace('_', '-')}": v for k, v in changes.items()}}
    return ["net", *[str(a) for item in settings.items() for a in item], "--no-progress", "--out", out]


def signal_after_checkpoint(proc: subprocess.Popen, phases: Path, phase: str, checkpoint: Path,
                            signum: int) -> tuple[int, str, str]:
    """Send ``signum`` once the run announced ``phase`` and wrote ``checkpoint`` (a moment in the
    middle of that phase, however slowly the machine runs)."""
    deadline = time.monotonic() + 300
    while not checkpoint.is_file():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-2000:]
        time.sleep(0.05)
    return signal_at(proc, phases, phase, signum, delay=0.0)


def check_folder(out, status: int, stderr: str, begins: str) -> dict:
    assert status == 1, stderr
    assert "Traceback" not in stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"].startswith(begins), summary["status"]
    assert {n.rstrip("/") for n in summary["files"]} == {p.name for p in out.iterdir()}
    return summary


def test_pretraining_stopped_then_resumed(tmp_path):
    out = tmp_path / "run"
    args = net_args(out, pretrain_epochs=400)
    proc, phases = start(args, tmp_path)
    status, stdout, stderr = signal_after_checkpoint(proc, phases, "pretrain", out / "checkpoints" / "pretrain.pt",
                                                     signal.SIGINT)
    summary = check_folder(out, status, stderr, "interrupted during pre-training (epoch) at epoch")
    assert "to resume, rerun the same command" in stdout and (out / "checkpoints").is_dir()
    assert summary["figures_not_drawn"]
    env = {"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}
    again = subprocess.run([sys.executable, "-m", "sgdnoise", *args], env=env, capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0, again.stderr
    resumed = json.loads((out / "summary.json").read_text())
    assert resumed["status"] == "completed"
    assert resumed["resumed_from"]["pre-training (epoch)"].startswith("step ")
    assert "resumed from" in again.stdout and "pre-training (epoch): step" in again.stdout
    assert int(resumed["resumed_from"]["pre-training (epoch)"].split()[1]) >= 15


@pytest.mark.parametrize("phase,changes,signum,begins", [
    ("late-phase:epoch", {"epochs": 4000}, signal.SIGINT, "interrupted during late phase (epoch)"),
    ("noise", {"noise_epochs": 400_000}, signal.SIGTERM, "interrupted during the noise measurement (epoch)"),
    ("accuracy", {"accuracy_seeds": 200}, signal.SIGINT, "interrupted during accuracy run"),
])
def test_stopped_net_keeps_a_readable_folder(tmp_path, phase, changes, signum, begins):
    out = tmp_path / "run"
    proc, phases = start(net_args(out, **changes), tmp_path)
    if phase == "late-phase:epoch":
        status, _, stderr = signal_after_checkpoint(proc, phases, phase, out / "checkpoints" / "epoch-record.pt",
                                                    signum)
    else:
        status, _, stderr = signal_at(proc, phases, phase, signum, delay=1.0)
    summary = check_folder(out, status, stderr, begins)
    assert f"{signal.Signals(signum).name}: stopping" in stderr
    assert len(summary["hessian_eigenvalues"]) == 4 and (out / "noise_autocorrelation.png").is_file()
    if phase == "late-phase:epoch":
        assert summary["late_phase"]["epoch"]["recorded_steps"] > 0 and "with-replacement" not in summary["late_phase"]
        assert len(summary["measured"]["var_theta"]["epoch"]) == 4 and (out / "fluctuations.png").is_file()
    if phase == "accuracy":
        assert summary["measured"]["var_theta"]["with-replacement"] and "accuracy" in summary
