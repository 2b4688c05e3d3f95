"""A test-only experiment for sweeps: ``mode`` ok, raise (always) or flaky (raises on its first attempt)."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

from sgdnoise.config import ExperimentConfig, option
from sgdnoise.sweeps.registry import SweepEntry


@dataclasses.dataclass(frozen=True)
class ToyConfig(ExperimentConfig):
    experiment: ClassVar[str] = "toy"
    mode: str = option("ok", "ok, raise or flaky")
    value: float = option(1.0, "a number")
    seed: int = option(0, "seed")


@dataclasses.dataclass
class ToyResult:
    value: float
    status: str = "completed"

    def to_summary(self) -> dict[str, Any]:
        return {"status": self.status, "measured": {"value": self.value}}


def run(config: ToyConfig, progress: bool = True, checkpoints: Path | None = None) -> ToyResult:
    if config.mode == "raise":
        raise RuntimeError(f"toy failure of value {config.value}")
    if config.mode == "flaky":
        marker = Path(checkpoints) / "tried"
        if not marker.exists():
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text("1")
            raise RuntimeError("flaky first attempt")
    return ToyResult(config.value * 2 + config.seed)


def save(result: ToyResult, folder) -> None:
    folder.write_summary(result.to_summary())


ENTRY = SweepEntry(ToyConfig, run, save)
