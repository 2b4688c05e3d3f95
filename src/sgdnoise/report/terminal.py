"""What the terminal shows once a result folder is written."""
from __future__ import annotations

import sys

from sgdnoise.report.folder import ResultFolder


def print_written(folder: ResultFolder, status: str = "completed") -> None:
    """Tell the user where the results are, and warn when the run stopped early."""
    if status != "completed":
        sys.stderr.write(f"warning: {status}\n")
    print(f"wrote {folder.path}/summary.json and:")
    for name in sorted(folder.files):
        if name.endswith((".png", ".npz", "/")):
            print(f"  {folder.path / name}")
