"""What a finished run did: counters, per-stage latencies, per-output results."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.errors import SinkError
from pipeline.runtime.metrics import LatencyHistogram, StageStats
from pipeline.runtime.ring import Ring
from pipeline.runtime.stage import Sink, Source


@dataclass
class OutputReport:
    """One output: frames written, frames dropped on the way to it (its ring's overflow
    policy, a stop, or its own failure), and the error that stopped it, if any."""

    sink: Sink
    written: int
    dropped: int
    error: SinkError | None = None

    @property
    def name(self) -> str:
        return self.sink.name


@dataclass
class RunReport:
    """Every frame read is written by each output meant for it, or dropped on the way:
    ``frames_in == output.written + output.dropped + dropped`` for a single source."""

    wall_s: float
    frames_in: int
    dropped: int  # frames that never reached the outputs' rings
    outputs: list[OutputReport]
    stages: list[StageStats]
    end_to_end: LatencyHistogram
    rings: list[Ring] = field(repr=False, default_factory=list)
    stopped_early: bool = False
    sources: list[Source] = field(repr=False, default_factory=list)

    @property
    def frames_out(self) -> dict[str, int]:
        return {o.name: o.written for o in self.outputs}

    @property
    def errors(self) -> list[SinkError]:
        return [o.error for o in self.outputs if o.error is not None]

    @property
    def fps(self) -> float:
        """Frames the pipeline processed (read and not dropped before the outputs) per
        second: a network output that drops frames while it is down does not lower it."""
        done = self.frames_in - self.dropped
        return done / self.wall_s if self.wall_s > 0 else 0.0
