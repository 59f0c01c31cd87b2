"""Where the local stack's start-up time goes: one line per phase, wall and CPU seconds.

Phases overlap (the exports run while the emulators start, a model service loads
while the next model is exported), so each line says when it began and ended,
counted from the stack's start, and the CPU seconds its processes used: on a
shared 2-core machine the wall times move with the load, the CPU seconds much less.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Phase:
    name: str
    began: float  # seconds after the stack's start
    ended: float
    cpu_seconds: float | None
    detail: str = ""


class StartupTimes:
    def __init__(self, origin: float | None = None) -> None:
        self.origin = time.monotonic() if origin is None else origin
        self.phases: list[Phase] = []

    def add(self, name: str, began_at: float, ended_at: float, cpu_seconds: float | None = None,
            detail: str = "") -> None:
        """A phase from began_at to ended_at (time.monotonic() readings)."""
        self.phases.append(Phase(name, began_at - self.origin, ended_at - self.origin, cpu_seconds, detail))

    def lines(self) -> list[str]:
        width = max((len(phase.name) for phase in self.phases), default=0)
        lines = []
        for phase in sorted(self.phases, key=lambda p: (p.began, p.ended)):
            cpu = f", CPU {phase.cpu_seconds:.1f} s" if phase.cpu_seconds is not None else ""
            detail = f"; {phase.detail}" if phase.detail else ""
            lines.append(f"  {phase.name:<{width}}  {phase.began:5.1f} → {phase.ended:5.1f} s "
                         f"({phase.ended - phase.began:.1f} s{cpu}){detail}")
        return lines
