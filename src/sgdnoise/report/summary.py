"""Result folders: ``summary.json`` with the full config and the package version.

Every run writes one folder.  :func:`write_summary` adds what is needed to rerun
it exactly (package version, Python, NumPy and PyTorch versions, the command
line, the time) and converts NumPy arrays and scalars to JSON.
"""
from __future__ import annotations

import json
import math
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from sgdnoise import __version__


def to_jsonable(obj: Any) -> Any:
    """Recursively convert NumPy/PyTorch values to JSON types (non-finite floats become None)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "detach") and hasattr(obj, "cpu"):  # torch tensor
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def provenance() -> dict[str, Any]:
    """Versions and command line of this run."""
    info: dict[str, Any] = {
        "sgdnoise_version": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "command": " ".join(["sgdnoise", *sys.argv[1:]]) if sys.argv else "",
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    torch = sys.modules.get("torch")
    if torch is not None:
        info["torch"] = torch.__version__
    return info


def write_summary(out_dir: Path | str, summary: dict[str, Any]) -> Path:
    """Write ``summary`` to ``out_dir/summary.json``, adding ``provenance``; return the path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = {**summary, "provenance": provenance()}
    path = out / "summary.json"
    path.write_text(json.dumps(to_jsonable(summary), indent=2) + "\n")
    return path
