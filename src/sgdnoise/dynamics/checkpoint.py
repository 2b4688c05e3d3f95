"""Checkpoints of long simulations: the full state, saved atomically, keyed by the config.

A :class:`Checkpoint` pickles the complete state of a run (replica states, the
sampler with its random generator state and epoch position, the streaming
statistics) every ``every`` seconds into one file, written under a temporary name
and renamed into place, so a run killed at any moment leaves either the previous
checkpoint or the new one.  A restarted run continues from it and gives results
bit-identical to an uninterrupted run.  A checkpoint made with other settings is
refused, naming the settings that differ.  A run that completes deletes its
checkpoint (and the folder, when empty).
"""
from __future__ import annotations

import json
import os
import pickle
import tempfile
import time
from pathlib import Path
from typing import Any

from sgdnoise.errors import UsageError

#: Seconds between checkpoints (``SGDNOISE_CHECKPOINT_SECONDS`` overrides it; 0: after every chunk).
EVERY_SECONDS = 60.0


def default_every() -> float:
    return float(os.environ.get("SGDNOISE_CHECKPOINT_SECONDS", EVERY_SECONDS))


class Checkpoint:
    """One resumable run's checkpoint file.

    Parameters
    ----------
    path : path
        The file (its folder is created at the first save).
    key : dict
        The complete settings of the run (JSON types); a checkpoint with another key is refused.
    every : float, optional
        Seconds between saves (default :func:`default_every`).
    """

    def __init__(self, path: str | Path, key: dict[str, Any], every: float | None = None) -> None:
        self.path = Path(path)
        self.key = json.loads(json.dumps(key))
        self.every = default_every() if every is None else every
        self._last = time.monotonic()

    def load(self) -> Any | None:
        """The saved state, or None when there is no checkpoint; UsageError for another config's."""
        if not self.path.is_file():
            return None
        with open(self.path, "rb") as handle:
            saved = pickle.load(handle)
        if saved["key"] != self.key:
            changed = sorted(k for k in saved["key"].keys() | self.key.keys()
                             if saved["key"].get(k) != self.key.get(k))
            raise UsageError(f"{self.path} is the checkpoint of a run with other settings "
                             f"({', '.join(changed)}); delete it or choose another output folder",
                             name=changed[0] if changed else None)
        return saved["state"]

    def due(self) -> bool:
        """Whether ``every`` seconds have passed since the last save."""
        return time.monotonic() - self._last >= self.every

    def remove(self) -> None:
        """Delete the checkpoint (a completed run), temporary files of saves that a kill cut short, and
        the folder when that is left empty."""
        self.path.unlink(missing_ok=True)
        for stale in self.path.parent.glob(f".{self.path.name}.*"):
            stale.unlink(missing_ok=True)
        try:
            self.path.parent.rmdir()
        except OSError:
            pass

    def save(self, state: Any) -> None:
        """Pickle ``state`` atomically (temporary file, fsync, rename)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(handle, "wb") as f:
                pickle.dump({"key": self.key, "state": state}, f, protocol=pickle.HIGHEST_PROTOCOL)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._last = time.monotonic()
