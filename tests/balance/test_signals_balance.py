"""Real processes, real signals: ``sgdnoise balance`` stopped by SIGINT/SIGTERM keeps what it measured."""
from __future__ import annotations

import json
import signal

import pytest

from test_signals import signal_at, start

BASE = ["balance", "--depth", "1", "--lr", "0.1", "--batch", "2", "--records", "4", "--no-progress"]


@pytest.mark.parametrize("phase,extra,signum,begins", [
    ("sgd", ["--replicas", 2000, "--balance-replicas", 10, "--time", 2_000_000], signal.SIGINT,
     "interrupted during SGD at t = "),
    ("sde", ["--replicas", 200, "--balance-replicas", 10, "--time", 50, "--tol", 1e-7], signal.SIGTERM,
     "interrupted during the SDE at t = "),
    ("balance-sgd", ["--replicas", 50, "--balance-replicas", 1_000_000, "--time", 200, "--no-sde"],
     signal.SIGINT, "interrupted during the imbalance-decay runs (SGD)"),
])
def test_stopped_balance_keeps_a_readable_folder(tmp_path, phase, extra, signum, begins):
    out = tmp_path / "run"
    proc, phases = start([*BASE, *extra, "--out", out], tmp_path)
    status, stdout, stderr = signal_at(proc, phases, phase, signum, delay=1.0)
    assert status == 1 and "Traceback" not in stderr, stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"].startswith(begins), summary["status"]
    assert {f.rstrip("/") for f in summary["files"]} == {p.name for p in out.iterdir()}
    assert (out / "checkpoints" / "balance.pkl").is_file()  # rerunning the command resumes
    assert summary["sgd"]["n"] > 0 and (out / "density.png").is_file()
    assert summary["balance_rate"] is None and "balance.png" in summary["figures_not_drawn"]
    assert f"{signal.Signals(signum).name}: stopping" in stderr and "status: interrupted" in stdout


def test_signal_while_writing_finishes_the_folder(tmp_path):
    out = tmp_path / "run"
    proc, phases = start([*BASE, "--replicas", 50, "--balance-replicas", 10, "--time", 20, "--out", out], tmp_path)
    status, _, stderr = signal_at(proc, phases, "writing", signal.SIGINT, delay=0.0)
    summary = json.loads((out / "summary.json").read_text())
    assert status == 1 and summary["status"] == "completed"
    assert set(summary["files"]) == {p.name for p in out.iterdir()}
