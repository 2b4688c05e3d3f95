"""Result folders: fresh or cleared, written atomically, with every file listed and documented.

Every run writes one folder through a :class:`ResultFolder`:

- :meth:`ResultFolder.prepare`, before any work, refuses an output path that is a
  file or cannot be written, and a folder holding files that no earlier sgdnoise
  run wrote there; at the first write, files an earlier run listed in its
  ``summary.json`` (``files``) are removed, so nothing stale is left next to the
  new results;
- every file is written under a temporary name and renamed into place
  (``os.replace``), so a killed writer never leaves a file that reads as complete;
- every file written is listed with what it holds, and ``summary.json`` (written
  last) lists exactly those files.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sgdnoise.errors import UsageError
from sgdnoise.report.summary import provenance, to_jsonable

SUMMARY = "summary.json"
#: Files sgdnoise itself keeps in a result folder between runs (resumable checkpoints).
KEPT = ("checkpoints",)


def _listed_files(summary: dict[str, Any]) -> set[str]:
    """Top-level names an earlier summary.json says its run wrote."""
    names = set()
    for name in summary.get("files", {}):
        names.add(name.rstrip("/").split("/")[0])
        stem, dot, suffix = name.partition(".")
        if suffix == "png":  # every figure is written as PNG and PDF
            names.add(f"{stem}.pdf")
    return names


def _umask() -> int:
    """The process's umask (read by setting it and setting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _probe(existing: Path, path: Path, name: str) -> None:
    """Create and remove a hidden folder in ``existing``: what permissions alone do not show
    (a read-only file system, /proc, a root process on a folder it may not write, a full quota)."""
    try:
        os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".sgdnoise-probe-"))
    except OSError as exc:
        raise UsageError(f"{name} {str(path)!r} cannot be written (creating a folder in {str(existing)!r} "
                         f"failed: {exc.strerror or exc})", name=name) from None


def check_output(path: str | Path, name: str, ours: Callable[[Path], bool], what: str) -> Path:
    """Before any work: refuse an output file (or store) ``path`` that exists and is not ``ours``
    (it would be overwritten: a zarr store written with ``mode="w"`` empties a folder), or whose
    folder cannot be created or written. Returns ``path`` as a Path."""
    path = Path(path)
    if path.exists() and not ours(path):
        raise UsageError(f"{name} {str(path)!r} exists and is not {what}; it would be overwritten: choose a "
                         "new path", name=name)
    check_writable(path, name, path.parent)
    return path


def check_writable(path: Path, name: str, start: Path | None = None) -> None:
    """Raise :class:`UsageError` unless ``path`` can be created: its nearest existing folder (from
    ``start``, default ``path``) is writable, and a hidden folder can be made and removed there."""
    existing = start if start is not None else path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{name} {str(path)!r} cannot be written (no write permission on {str(existing)!r})",
                         name=name)
    _probe(existing, path, name)


class ResultFolder:
    """The output folder of one run; see the module docstring.

    Parameters
    ----------
    path : path
        The folder (created when missing).
    name : str
        How the command line names it (``--out``), for messages.
    """

    def __init__(self, path: str | Path, name: str = "out") -> None:
        self.path = Path(path)
        self.name = name
        self.files: dict[str, Any] = {}
        self._opened = False

    def prepare(self) -> "ResultFolder":
        """Check the path, before any work: raise :class:`UsageError` if it cannot hold this run.

        Nothing is created or removed yet; that happens at the first write
        (:meth:`_open`), so a run refused later for bad input leaves no trace.
        """
        path = self.path
        if path.exists() and not path.is_dir():
            raise UsageError(f"{self.name} must be a folder; {str(path)!r} is a file", name=self.name)
        check_writable(path, self.name)
        unknown = sorted(self._present() - self._ours() - set(KEPT)) if path.is_dir() else []
        if unknown:
            raise UsageError(
                f"{self.name} {str(path)!r} holds files that no earlier sgdnoise run wrote there "
                f"({', '.join(unknown[:3])}{', ...' if len(unknown) > 3 else ''}); choose an empty or new folder",
                name=self.name)
        return self

    def _present(self) -> set[str]:
        return {p.name for p in self.path.iterdir() if not p.name.startswith(".")}

    def _ours(self) -> set[str]:
        """Names an earlier run's summary.json says it wrote (empty without a readable summary)."""
        try:
            previous = json.loads((self.path / SUMMARY).read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            previous = {}
        # what sgdnoise keeps between runs counts as ours even without a summary (an interrupted run)
        return (_listed_files(previous) | {SUMMARY} if previous else set()) | set(KEPT)

    def _open(self) -> None:
        """Create the folder and clear what an earlier run left there (once, at the first write)."""
        if self._opened:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        for name in sorted(self._present() & self._ours() - set(KEPT)):
            target = self.path / name
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        self._opened = True

    def _atomic(self, name: str, write: Callable[[Path], None], description: Any) -> Path:
        self._open()
        final = self.path / name
        final.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=final.suffix)
        os.close(handle)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a result file gets the usual rw-r--r--
        try:
            write(Path(tmp))
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        if description is not None:
            self.files[name] = description
        return final

    def write_text(self, name: str, text: str, description: Any) -> Path:
        """Write ``text`` to ``name`` atomically and list it."""
        return self._atomic(name, lambda p: p.write_text(text), description)

    def write_json(self, name: str, data: dict[str, Any], description: Any) -> Path:
        """Write ``data`` as JSON (NumPy values converted, non-finite numbers as null)."""
        return self.write_text(name, json.dumps(to_jsonable(data), indent=2) + "\n", description)

    def write_arrays(self, name: str, arrays: dict[str, np.ndarray], description: Any) -> Path:
        """Write ``arrays`` to a compressed ``.npz`` atomically and list it."""
        def write(p: Path) -> None:
            with open(p, "wb") as handle:
                np.savez_compressed(handle, **arrays)
        return self._atomic(name, write, description)

    def save_figure(self, fig: Any, name: str, description: str, tight: bool = True) -> Path:
        """Save a matplotlib figure as ``name.png`` (150 dpi) and ``name.pdf``, close it, list both."""
        from sgdnoise.report.figures import plt

        if tight:
            fig.tight_layout()
        try:
            png = self._atomic(f"{name}.png", lambda p: fig.savefig(p, dpi=150, format="png"), description)
            self._atomic(f"{name}.pdf", lambda p: fig.savefig(p, format="pdf"), f"{description} (vector)")
        finally:
            plt.close(fig)
        return png

    def subfolder(self, name: str, description: str) -> "ResultFolder":
        """A result folder inside this one (listed as ``name/``)."""
        self._open()
        self.files[f"{name}/"] = description
        return ResultFolder(self.path / name, f"{self.name}/{name}").prepare()

    def write_summary(self, summary: dict[str, Any]) -> Path:
        """Write ``summary.json`` last: the summary, its provenance and the list of files."""
        kept = {f"{name}/": "checkpoints of an interrupted run: rerunning the same command resumes from them "
                            "(deleted once a run completes)" for name in KEPT if (self.path / name).exists()}
        files = {SUMMARY: "this file: config, provenance, results", **self.files, **kept}
        return self.write_json(SUMMARY, {**summary, "provenance": provenance(), "files": files}, None)
