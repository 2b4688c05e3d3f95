"""Shared fixtures and helpers of the test suite."""
from __future__ import annotations

import numpy as np
import pytest

from sgdnoise.cli import main


@pytest.fixture
def run_cli(capsys):
    """Run ``sgdnoise ARGS``; return (exit status, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        try:
            status = main([str(a) for a in args])
        except SystemExit as exc:  # argparse exits
            status = exc.code
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    return run


def max_abs_z(measured: np.ndarray, expected: np.ndarray, stderr: np.ndarray) -> float:
    """Largest |measured - expected| / stderr."""
    return float(np.max(np.abs((np.asarray(measured) - expected) / stderr)))
