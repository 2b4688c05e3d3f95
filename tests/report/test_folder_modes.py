"""Result files get the permissions of any file the user creates (0666 less the umask), not mkstemp's 0600."""
from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from sgdnoise.report.folder import ResultFolder


@pytest.mark.parametrize("mask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_result_files_follow_the_umask(tmp_path, mask, mode):
    before = os.umask(mask)
    try:
        folder = ResultFolder(tmp_path / "run").prepare()
        folder.write_arrays("arrays.npz", {"x": np.zeros(3)}, "zeros")
        folder.write_summary({"status": "completed"})
    finally:
        os.umask(before)
    for name in ("arrays.npz", "summary.json"):
        assert stat.S_IMODE((tmp_path / "run" / name).stat().st_mode) == mode, name
