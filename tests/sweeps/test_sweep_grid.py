"""SWEEP.toml -> cells: grid x zip x seeds, ids from the complete config, every cell checked first."""
from __future__ import annotations

import pytest

from sgdnoise.errors import UsageError
from sgdnoise.sweeps import SweepSpec, cell_id


def spec(**extra):
    table = {"experiment": "linear", "base": {"N": 6, "P": 24, "steps": 300, "seed": 5},
             "grid": {"batch_size": [2, 4]}, "zip": {"lr": [0.1, 0.2], "momentum": [0.0, 0.5]}, "seeds": 3}
    table.update(extra)
    return SweepSpec.from_mapping(table)


def test_grid_zip_seeds():
    s = spec()
    cells = s.cells()
    assert len(cells) == 2 * 2 * 3
    assert list(s.axes()) == ["batch_size", "lr", "seed"]
    assert s.axes()["seed"] == [5, 6, 7]  # seeds start at the base seed
    assert {(c.point["lr"], c.point["momentum"]) for c in cells} == {(0.1, 0.0), (0.2, 0.5)}
    assert len({c.id for c in cells}) == len(cells)
    first = cells[0]
    assert first.id == cell_id("linear", first.mapping) and len(first.id) == 16
    assert first.mapping["seed"] == 5 and first.index == (0, 0, 0)


def test_changed_config_changes_the_id():
    a = spec().cells()[0]
    b = spec(base={"N": 6, "P": 24, "steps": 301, "seed": 5}).cells()[0]
    assert a.point == b.point and a.id != b.id
    assert spec().cells()[0].id == a.id  # stable


@pytest.mark.parametrize("change, named", [
    ({"base": {"N": 6, "P": 24, "stepz": 3}}, "stepz"),
    ({"grid": {"batch_size": [2, 100]}}, "batch"),
    ({"grid": {"lr": [0.1, 9.0]}, "zip": {}}, "lr"),
    ({"zip": {"lr": [0.1], "momentum": [0.0, 0.5]}}, "zip"),
    ({"seeds": 0}, "seeds"),
    ({"colour": 1}, "colour"),
    ({"experiment": "nope"}, "experiment"),
])
def test_bad_cells_are_refused_before_any_work(change, named):
    with pytest.raises(UsageError) as info:
        spec(**change).cells()
    assert named in str(info.value) and "\n" not in str(info.value)


def test_cli_bad_key_exits_2_with_one_line(tmp_path, run_cli):
    path = tmp_path / "bad.toml"
    path.write_text('experiment = "linear"\n[base]\nN = 6\nP = 24\n[grid]\nbatch_size = [2, 50]\n')
    status, out, err = run_cli("sweep", path, "--out", tmp_path / "out")
    assert status == 2 and len(err.strip().splitlines()) == 1 and "batch" in err
    assert not (tmp_path / "out").exists()
