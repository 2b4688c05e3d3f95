"""``collect --out`` and ``report --out`` never overwrite what sgdnoise did not write (checked before any work).

``collect --format zarr --out FOLDER`` emptied FOLDER (zarr's mode "w"), ``--out`` naming any file
replaced it, and an unwritable path or a folder for netCDF ended in a traceback.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from sweep_helpers import tiny_spec
from test_failure_paths_linear import one_line_exit_2


@pytest.fixture
def sweep(tmp_path):
    """A sweep folder none of whose cells ran (collect and report work on it)."""
    folder = tmp_path / "sweep"
    folder.mkdir()
    (folder / "sweep.toml").write_text(tiny_spec(tmp_path).read_text())
    return folder


@pytest.mark.parametrize("command,target,needle", [
    (["collect", "--format", "zarr"], "folder", "is not a zarr store or an empty folder"),
    (["collect"], "folder", "is not a netCDF file"),
    (["collect"], "file", "is not a netCDF file"),
    (["report"], "file", "is not an HTML page sgdnoise wrote"),
    (["report"], "folder", "is not an HTML page sgdnoise wrote"),
])
def test_foreign_out_is_refused_and_kept(run_cli, tmp_path, sweep, command, target, needle):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    out = mine if target == "folder" else mine / "thesis.tex"
    status, _, stderr = run_cli(command[0], sweep, *command[1:], "--out", out)
    one_line_exit_2(status, stderr, needle)
    assert (mine / "thesis.tex").read_text() == "precious"


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
@pytest.mark.parametrize("command", ["collect", "report"])
def test_out_that_cannot_be_written_is_one_line(run_cli, sweep, command):
    status, _, stderr = run_cli(command, sweep, "--out", "/proc/sgdnoise-no-such/out")
    one_line_exit_2(status, stderr, "cannot be written")


def test_collect_and_report_write_where_asked(run_cli, tmp_path, sweep):
    for command, out in (("collect", tmp_path / "new" / "s.nc"), ("report", tmp_path / "new" / "r.html")):
        assert run_cli(command, sweep, "--out", out)[0] == 0 and out.is_file()
        assert run_cli(command, sweep, "--out", out)[0] == 0  # its own earlier output is replaced
