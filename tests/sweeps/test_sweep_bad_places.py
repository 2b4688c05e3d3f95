"""``sgdnoise sweep`` with an --out that cannot be created or a --scheduler that cannot be reached:
one line naming the flag, exit 2 (both were tracebacks), no cell run."""
from __future__ import annotations

from pathlib import Path

import pytest

from sweep_helpers import tiny_spec
from test_failure_paths_linear import one_line_exit_2


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_sweep_out_that_cannot_be_created(run_cli, tmp_path):
    status, _, stderr = run_cli("sweep", tiny_spec(tmp_path), "--out", "/proc/sgdnoise-no-such/out", "--no-progress")
    one_line_exit_2(status, stderr, "--out '/proc/sgdnoise-no-such/out' cannot be written")


def test_unreachable_dask_scheduler(run_cli, tmp_path):
    dask = pytest.importorskip("dask")
    pytest.importorskip("distributed")
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        status, _, stderr = run_cli("sweep", tiny_spec(tmp_path), "--out", tmp_path / "out", "--executor", "dask",
                                    "--scheduler", "tcp://127.0.0.1:1", "--no-progress")
    one_line_exit_2(status, stderr, "--scheduler 'tcp://127.0.0.1:1' cannot be reached")
    assert not list((tmp_path / "out" / "cells").glob("*/record.json"))
