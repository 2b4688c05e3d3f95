"""Real processes, real signals: the Ziyin reproductions stopped by SIGINT keep what they measured.

``ziyin-densities`` crashed (KeyError on the missing SDE case), ``ziyin-tail`` crashed (a fit of
too few samples formatted as a number), ``ziyin-inversion`` wrote no ``status`` and said "done".
"""
from __future__ import annotations

import json
import signal

import pytest

from test_signals import signal_at, start


@pytest.mark.parametrize("name,phase,begins", [
    ("ziyin-densities", "sgd", "interrupted: case D0_T0.05: interrupted during SGD at t = "),
    ("ziyin-tail", "tail-D1", "interrupted: the SDE of D = 1 stopped at t = "),
    ("ziyin-inversion", "growth", "interrupted: "),
])
def test_stopped_reproduction_keeps_a_readable_folder(tmp_path, name, phase, begins):
    out = tmp_path / "run"
    proc, phases = start(["reproduce", name, "--no-progress", "--out", out], tmp_path)
    status, stdout, stderr = signal_at(proc, phases, phase, signal.SIGINT, delay=0.5)
    assert status == 1 and "Traceback" not in stderr, stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"].startswith(begins), summary["status"]
    assert {f.rstrip("/") for f in summary["files"]} == {p.name for p in out.iterdir()}
    assert any(f.endswith(".png") for f in summary["files"]), summary["files"]
    assert "stopped in" in stdout and "done in" not in stdout, stdout
