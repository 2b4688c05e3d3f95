"""Fixtures of the sweep tests."""
from __future__ import annotations

import pytest

from sweep_helpers import HERE, env


@pytest.fixture
def toy_path(monkeypatch):
    """The toy experiment importable here and in every worker (sys.path and PYTHONPATH)."""
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.setenv("PYTHONPATH", env()["PYTHONPATH"])
