"""The epoch accuracy map (``sgdnoise reproduce epoch-accuracy-map``) on a two-cell grid.

- every method of the map gets trace, max and median errors with standard errors; a method
  that fails is recorded with its error and the others still run;
- where the exact reference applies (P <= 16), the simulation agrees with it within 4
  standard errors (trace and every direction): the harness measures what it claims;
- the errors against the exact reference are those of the predictions (computed by hand here);
- the result folder holds the figure, the table and a summary with every cell.
"""
from __future__ import annotations

import json

import numpy as np

from sgdnoise.experiments.linear import epoch_map
from sgdnoise.experiments.linear.epoch_map import METHODS, Cell
from sgdnoise.report.epoch_map import save
from sgdnoise.report.folder import ResultFolder
from sgdnoise.problems.linear import LinearRegression
from sgdnoise.theory import epoch_exact_moments

GRID = (Cell(3, 8, 2, 1.0, 0.0, "tiny"), Cell(3, 8, 1, 0.5, 0.0))


def test_map_cells_errors_and_folder(tmp_path):
    result = epoch_map.run(seed=1, progress=False, grid=GRID)
    assert result.status == "completed" and len(result.cells) == 2
    tiny = result.cells[0]
    for method in METHODS:
        entry = tiny.errors[method]
        for key in ("trace_relative_error", "max_abs_relative_error", "median_abs_relative_error"):
            assert np.isfinite(entry[key]) and entry[f"{key}_stderr"] >= 0
    sim = tiny.exact_errors["simulation"]
    assert abs(sim["trace_z"]) < 4 and sim["max_abs_z"] < 4, sim
    problem = LinearRegression.teacher_student(3, 8, epoch_map.LABEL_NOISE, seed=1)
    exact = epoch_exact_moments(problem.X, problem.Y[:, 0], 1.0, 2, 0.0)
    kr = np.asarray(tiny.predictions["kuehn-rosenow"]["var_theta"])
    np.testing.assert_allclose(tiny.exact_errors["kuehn-rosenow"]["max_abs_relative_error"],
                               np.max(np.abs(kr / exact.var_theta - 1)), rtol=1e-12)
    assert tiny.strength == 1.0 * np.trace(problem.hessian) / 2
    for method in METHODS:  # S = 1: whatever a method does, the map records it and goes on
        assert "error" in result.cells[1].errors[method] or "trace_relative_error" in result.cells[1].errors[method]
    save(result, ResultFolder(tmp_path).prepare())
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert len(summary["cells"]) == 2 and summary["cells"][0]["label"].startswith("tiny")
    assert (tmp_path / "epoch_accuracy_map.png").is_file() and "tiny" in (tmp_path / "table.md").read_text()


def test_grid_holds_the_demo_and_the_small_case():
    from sgdnoise.experiments.linear.config import DemoConfig

    demo = DemoConfig()
    cells = {(c.N, c.P, c.S, c.lr, c.beta) for c in epoch_map.GRID}
    assert (100, 200, demo.batch_size, demo.lr, demo.momentum) in cells
    assert (10, 40, 4, 2.0, 0.0) in cells
    assert any(c.P <= epoch_map.EXACT_MAX_P for c in epoch_map.GRID)
