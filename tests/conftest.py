"""Shared fixtures and helpers of the test suite."""
from __future__ import annotations

import os
import tempfile

# Each xdist worker compiles the numba kernels into a cache of its own, set before numba is imported:
# on a fresh clone two workers would otherwise write the same cache files at once, and one of them
# can load a half-written entry and crash (a segfault seen in CI-like runs).
if "PYTEST_XDIST_WORKER" in os.environ:
    os.environ["NUMBA_CACHE_DIR"] = os.path.join(tempfile.gettempdir(),
                                                 f"sgdnoise-numba-{os.environ['PYTEST_XDIST_WORKER']}")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from sgdnoise.cli import main  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """One torch thread per test process: the models are tiny and pytest runs two processes on two cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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
