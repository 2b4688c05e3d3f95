"""Result folders: fresh or cleared, written atomically, with every file listed and documented.

Every run writes one folder through a :class:`ResultFolder`:

- :meth:`ResultFolder.prepare` refuses an output path that is a file or cannot be
  written, and a folder holding files that no earlier sgdnoise run wrote there;
  files an earlier run listed in its ``summary.json`` (``files``) are removed
  first, so nothing stale is left next to the new results;
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

    def prepare(self) -> "ResultFolder":
        """Check the path and clear what an earlier run left; raise :class:`UsageError` otherwise."""
        path = self.path
        if path.exists() and not path.is_dir():
            raise UsageError(f"{self.name} must be a folder; {str(path)!r} is a file", name=self.name)
        try:
            path.mkdir(parents=True, exist_ok=True)
            probe = tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-", delete=True)
            probe.close()
        except OSError as exc:
            raise UsageError(f"{self.name} {str(path)!r} cannot be written: {exc.strerror}", name=self.name) from None
        present = {p.name for p in path.iterdir() if not p.name.startswith(".")}
        if not present:
            return self
        summary_path = path / SUMMARY
        previous: dict[str, Any] = {}
        if summary_path.is_file():
            try:
                previous = json.loads(summary_path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError):
                previous = {}
        # what sgdnoise keeps between runs counts as ours even without a summary (an interrupted run)
        ours = (_listed_files(previous) | {SUMMARY} if previous else set()) | set(KEPT)
        unknown = sorted(present - ours)
        if unknown:
            raise UsageError(
                f"{self.name} {str(path)!r} holds files that no earlier sgdnoise run wrote there "
                f"({', '.join(unknown[:3])}{', ...' if len(unknown) > 3 else ''}); choose an empty or new folder",
                name=self.name)
        for name in sorted(present - set(KEPT)):
            target = path / name
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        return self

    def _atomic(self, name: str, write: Callable[[Path], None], description: Any) -> Path:
        final = self.path / name
        final.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=final.suffix)
        os.close(handle)
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
        self.files[f"{name}/"] = description
        return ResultFolder(self.path / name, f"{self.name}/{name}").prepare()

    def write_summary(self, summary: dict[str, Any]) -> Path:
        """Write ``summary.json`` last: the summary, its provenance and the list of files."""
        files = {SUMMARY: "this file: config, provenance, results", **self.files}
        return self.write_json(SUMMARY, {**summary, "provenance": provenance(), "files": files}, None)
