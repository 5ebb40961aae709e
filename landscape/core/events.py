"""Progress events: what the trainer and the analysis runner report while they work."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    """Progress report for the CLI: `kind` is plan | group | steps | run | note."""

    kind: str
    message: str = ""
    done: int = 0
    total: int = 0
    run: dict | None = None
