"""A sweep killed with SIGKILL mid-way (real subprocess) and restarted recomputes no finished cell
and loses or corrupts no record."""
from __future__ import annotations

import json
import os
import signal
import time

from sgdnoise.sweeps import SweepSpec, status
from sgdnoise.sweeps.store import read_record

from sweep_helpers import sgdnoise, tiny_spec


def records(out, cells):
    return {c.id: read_record(out, c.id) for c in cells}


def settled(out, seconds=30):
    """The status once no lock belongs to a live process any more (killed workers take a moment to die)."""
    deadline = time.time() + seconds
    while (state := status(out)).running and time.time() < deadline:
        time.sleep(0.2)
    return state


def test_sigkill_mid_sweep_then_restart(tmp_path):
    path = tiny_spec(tmp_path, seeds=3, batches="[2, 3]")
    spec, out = SweepSpec.read(path), tmp_path / "out"
    cells = spec.cells()
    process = sgdnoise("sweep", path, "--out", out, "--workers", "1", "--no-progress", start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None:
        done = [r for r in records(out, cells).values() if r and r["status"] == "done"] if out.exists() else []
        if len(done) >= 2:
            break
        time.sleep(0.1)
    assert process.poll() is None, f"the sweep ended before it was killed: {process.communicate()}"
    os.killpg(process.pid, signal.SIGKILL)  # the driver and its worker, at once
    process.wait()
    before = {k: r for k, r in records(out, cells).items() if r is not None}
    assert 2 <= len(before) < 6
    assert all(r["status"] == "done" for r in before.values())
    for cid in before:  # a record is written last: its result folder is complete
        assert json.loads((out / "cells" / cid / "result" / "summary.json").read_text())["status"] == "completed"
    # no record, no files that read as complete: leftover temporary files only
    state = settled(out)
    assert len(state.done) == len(before) and not state.failed
    assert not state.running  # the killed worker's lock is stale (dead pid)

    process = sgdnoise("sweep", path, "--out", out, "--workers", "2", "--no-progress")
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    after = records(out, cells)
    assert all(r["status"] == "done" and r["attempts"] == 1 for r in after.values())
    for cid, record in before.items():
        assert after[cid] == record  # not recomputed: same finish time, pid, everything
    assert status(out).counts() == {"done": 6, "running": 0, "failed": 0, "remaining": 0}


def test_ctrl_c_stops_the_sweep_and_keeps_every_record(tmp_path):
    path = tiny_spec(tmp_path, seeds=3, batches="[2, 3]")
    spec, out = SweepSpec.read(path), tmp_path / "out"
    cells = spec.cells()
    process = sgdnoise("sweep", path, "--out", out, "--workers", "1", "--no-progress")
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None:
        if out.exists() and any(r and r["status"] == "done" for r in records(out, cells).values()):
            break
        time.sleep(0.1)
    assert process.poll() is None
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 1, stderr
    assert "leaked semaphore" not in stderr and "Traceback" not in stderr, stderr
    assert ", 0 running, " in stdout + stderr  # the stopped worker is gone before the last count
    assert "stopped (SIGINT): the cells that were running keep no record; rerunning the same command" in stdout
    state = settled(out)
    assert 1 <= len(state.done) < 6 and not state.failed and not state.running
    done = records(out, state.done)
    rerun = sgdnoise("sweep", path, "--out", out, "--workers", "2", "--no-progress")
    rerun.communicate(timeout=300)
    assert rerun.returncode == 0
    assert all(read_record(out, cid) == record for cid, record in done.items())
    assert status(out).counts()["done"] == 6
