"""The result store of a sweep: one record per cell, every write atomic (docs/sweeps.md).

Layout of a sweep folder::

    SWEEP_DIR/sweep.toml              the spec (a copy of SWEEP.toml)
    SWEEP_DIR/cells/<id>/result/      the cell's result folder (the experiment's own save)
    SWEEP_DIR/cells/<id>/checkpoints/ checkpoints of experiments that resume
    SWEEP_DIR/cells/<id>/lock         {pid, host, time, progress} while a worker runs the cell
    SWEEP_DIR/cells/<id>/record.json  written LAST: {id, config, status, error, traceback, ...}

A cell is done only when its ``record.json`` says so.  Every file is written
under a temporary name and renamed into place, so a killed writer leaves no
record and the cell simply runs again.
"""
from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from sgdnoise.errors import UsageError
from sgdnoise.report.folder import check_writable
from sgdnoise.report.summary import to_jsonable
from sgdnoise.sweeps.grid import Cell, SweepSpec

SPEC = "sweep.toml"
RECORD = "record.json"
LOCK = "lock"


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` under a temporary name, fsync, rename into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cell_dir(sweep_dir: Path | str, cid: str) -> Path:
    return Path(sweep_dir) / "cells" / cid


def read_record(sweep_dir: Path | str, cid: str) -> dict[str, Any] | None:
    """The cell's record, or None when there is none (or it cannot be read)."""
    try:
        return json.loads((cell_dir(sweep_dir, cid) / RECORD).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def write_record(sweep_dir: Path | str, record: dict[str, Any]) -> None:
    """Write ``record.json`` of ``record['id']`` atomically (the last write of a cell)."""
    write_atomic(cell_dir(sweep_dir, record["id"]) / RECORD, json.dumps(to_jsonable(record), indent=1) + "\n")


def take_lock(sweep_dir: Path | str, cid: str) -> dict[str, Any]:
    """Mark the cell as running on this host and process; return the lock."""
    lock = {"pid": os.getpid(), "host": socket.gethostname(), "time": time.time()}
    write_atomic(cell_dir(sweep_dir, cid) / LOCK, json.dumps(lock) + "\n")
    return lock


def report_progress(sweep_dir: Path | str, cid: str, lock: dict[str, Any], state: dict[str, Any]) -> None:
    """Rewrite the cell's lock with the state of its latest progress bar (``progress``: desc, n, total, unit)."""
    write_atomic(cell_dir(sweep_dir, cid) / LOCK, json.dumps({**lock, "progress": state}) + "\n")


def read_lock(sweep_dir: Path | str, cid: str) -> dict[str, Any] | None:
    """The cell's lock (with ``progress`` once the cell reported any), or None."""
    try:
        return json.loads((cell_dir(sweep_dir, cid) / LOCK).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def drop_lock(sweep_dir: Path | str, cid: str) -> None:
    (cell_dir(sweep_dir, cid) / LOCK).unlink(missing_ok=True)


def describe_progress(lock: dict[str, Any] | None) -> str:
    """``"SGD epoch 12000/60000 step"`` from a lock's latest progress report ("starting" before any)."""
    state = (lock or {}).get("progress")
    if not state:
        return "starting"

    def number(x: float) -> str:
        return f"{int(x)}" if float(x).is_integer() else f"{x:.4g}"

    total = f"/{number(state['total'])}" if state.get("total") else ""
    return f"{state.get('desc') or 'running'} {number(state.get('n', 0))}{total} {state.get('unit') or 'it'}"


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (a zombie, killed but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return True


def is_running(sweep_dir: Path | str, cid: str) -> bool:
    """A lock of a live process (another host's lock counts as live)."""
    lock = read_lock(sweep_dir, cid)
    if lock is None:
        return False
    return lock.get("host") != socket.gethostname() or _alive(int(lock.get("pid", -1)))


def prepare(sweep_dir: Path | str, spec: SweepSpec) -> Path:
    """Check the sweep folder before any work and write ``sweep.toml``.

    Refuses a file, and a non-empty folder that is not a sweep folder.
    """
    path = Path(sweep_dir)
    if path.exists() and not path.is_dir():
        raise UsageError(f"--out must be a folder; {str(path)!r} is a file", name="--out")
    if path.is_dir() and any(path.iterdir()) and not (path / SPEC).is_file():
        raise UsageError(f"--out {str(path)!r} is not empty and holds no {SPEC}: not a sweep folder; "
                         "choose an empty or new folder", name="--out")
    check_writable(path, "--out")
    path.mkdir(parents=True, exist_ok=True)
    write_atomic(path / SPEC, tomli_w.dumps(spec.to_mapping()))
    return path


def read_spec(sweep_dir: Path | str) -> SweepSpec:
    """The spec a sweep folder was run with."""
    path = Path(sweep_dir) / SPEC
    if not path.is_file():
        raise UsageError(f"DIR {str(sweep_dir)!r} is not a sweep folder (no {SPEC})", name="DIR")
    return SweepSpec.read(path)


@dataclass
class SweepStatus:
    """Cells of a sweep by state (each a list of :class:`Cell`)."""

    done: list[Cell]
    running: list[Cell]
    failed: list[Cell]
    remaining: list[Cell]

    def counts(self) -> dict[str, int]:
        return {k: len(getattr(self, k)) for k in ("done", "running", "failed", "remaining")}


def status(sweep_dir: Path | str, cells: list[Cell] | None = None) -> SweepStatus:
    """Done, running (a live lock), failed and remaining cells of the sweep in ``sweep_dir``."""
    cells = read_spec(sweep_dir).cells() if cells is None else cells
    out = SweepStatus([], [], [], [])
    for cell in cells:
        record = read_record(sweep_dir, cell.id)
        if record is not None and record.get("status") == "done":
            out.done.append(cell)
        elif is_running(sweep_dir, cell.id):
            out.running.append(cell)
        elif record is not None and record.get("status") == "failed":
            out.failed.append(cell)
        else:
            out.remaining.append(cell)
    return out
