"""Every Gross et al. reproduction runs end to end at tiny sizes and writes its figure and summary."""
from __future__ import annotations

import json

import numpy as np
import pytest

from sgdnoise.commands.linear import REPRODUCTIONS
from sgdnoise.experiments.linear import gross_fig2, gross_fig3, gross_fig4, gross_fig5, gross_fig5b
from sgdnoise.report.folder import ResultFolder

TINY = {
    gross_fig2: {"FIG2A_N": (10, 20), "FIG2A_S": (1.5, 2.0, 4.0), "FIG2A_REALISATIONS": 2, "FIG2B_N": 10,
                 "FIG2B_P": (15, 40), "FIG2B_REALISATIONS": 3},
    gross_fig3: {"N": 12, "NORM": 1e-2 / 12 / 10, "RATIOS": (1.5, 3.0), "REALISATIONS": 2, "EXTREME_GRID": (1.5, 3.0),
                 "PANEL_C_P": 18, "SGD_REPLICAS": 2, "SGD_STEPS": 50, "BATCHES": 2000},
    gross_fig4: {"N4": 8, "P4": 10, "T_MAX": 200, "REPLICAS": 4, "MODES": (1, 2, 5)},
    gross_fig5: {"N": 12, "N5A": (4, 8), "P5A": 20, "STEPS5A": 500, "RATIOS5C": (1.5, 3.0), "REALISATIONS5C": 2},
    gross_fig5b: {"N": 12, "RATIOS": (1.05, 2.0), "SURROGATES": 2, "MIN_STEPS": 1000, "MAX_STEPS": 2000,
                  "STEPS_AT_1_05": 2000},
}


@pytest.fixture
def tiny(monkeypatch):
    for module, values in TINY.items():
        for name, value in values.items():
            monkeypatch.setattr(module, name, value)


@pytest.mark.parametrize("name", ["gross-fig2", "gross-fig3", "gross-fig4", "gross-fig5a", "gross-fig5b",
                                  "gross-fig5c"])
def test_reproduction_runs_and_writes(tiny, tmp_path, name):
    entry = REPRODUCTIONS[name]
    result = entry.run(0, False)
    assert result.status == "completed"
    folder = ResultFolder(tmp_path / name).prepare()
    entry.save(result, folder)
    summary = json.loads((tmp_path / name / "summary.json").read_text())
    assert summary["status"] == "completed" and any(f.endswith(".png") for f in summary["files"])


def test_fig5b_detailed_balance_is_positive_and_conventional_line_is_one(tiny):
    result = gross_fig5b.fig5b(0, False)
    for point in result.data["points"]:
        assert point["detailed_balance_min"] > 0
    assert "1" in result.config["conventional"]


def test_fig4_replica_mean_follows_the_prediction(tiny):
    result = gross_fig4.fig4(0, False)
    assert np.isfinite(result.data["max_deviation_all_modes_in_se"])
    np.testing.assert_allclose(result.arrays["z_theory"][0], result.arrays["z_single"][0], atol=1e-12)
