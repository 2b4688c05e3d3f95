"""Shared figure plumbing: a headless matplotlib and one way to save figures."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["plt", "save_figure"]


def save_figure(fig: "matplotlib.figure.Figure", out_dir: Path | str, name: str,
                tight: bool = True) -> Path:
    """Save ``fig`` as ``out_dir/name.png`` (150 dpi) and ``.pdf``; close it; return the PNG path.

    ``tight=False`` keeps a layout the caller arranged (e.g. room for a figure legend).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if tight:
        fig.tight_layout()
    png = out / f"{name}.png"
    fig.savefig(png, dpi=150)
    fig.savefig(out / f"{name}.pdf")
    plt.close(fig)
    return png
