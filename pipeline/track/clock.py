"""The tracker's clock: a source's timestamps made safe for a motion model.

Trackers predict motion from the time between frames and refuse frames whose time goes
back (the ``trackers`` package skips the update and warns, so every later detection of
the source would stay untracked). Real timestamps do go back and jump:

- back: MPEG-TS segments joined with ``cat`` (dashcams and recorders write them so; each
  segment starts again near 1.4 s), a camera whose clock is set back;
- forward: a gap in a recording, a live camera that dropped and reconnected (live frames
  carry wall-clock time).

Going back (or standing still) is a timestamp artefact: the frames still follow each
other, so the clock moves on by one nominal frame and tracking continues across it.
A forward jump longer than ``max_gap`` (and than ``MIN_GAP_FRAMES`` frame periods, so a
time-lapse is not cut up) is a real gap: what was tracked before it is stale, and the
tracker restarts. Either way the caller logs one line per discontinuity.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

# a forward jump must also be longer than this many nominal frame periods to count as a
# gap: a 0.2 FPS time-lapse has 5 s between frames and is still one scene
MIN_GAP_FRAMES = 10


class Jump(enum.Enum):
    BACK = "back"  # the timestamp went back: re-based, tracking continues
    GAP = "gap"  # the timestamp jumped forward past max_gap: tracking restarts


@dataclass(frozen=True)
class Discontinuity:
    """One break in a source's timestamps: ``before`` and ``after`` are the source's own
    timestamps (seconds) of the frames either side."""

    jump: Jump
    before: float
    after: float

    def describe(self) -> str:
        if self.jump is Jump.BACK:
            return (f"timestamps go back {self.before - self.after:.2f} s "
                    f"({self.before:.3f} -> {self.after:.3f} s: joined recordings or a clock "
                    "reset); tracking continues across it")
        return (f"timestamps jump forward {self.after - self.before:.2f} s "
                f"({self.before:.3f} -> {self.after:.3f} s: a gap in the recording or a "
                "reconnect); tracking restarts")


class TrackClock:
    """Maps a source's timestamps (seconds) to strictly increasing tracker times."""

    def __init__(self, frame_rate: float, max_gap: float) -> None:
        self.period = 1.0 / frame_rate if frame_rate > 0 else 1.0 / 30.0
        self.max_gap = max_gap  # 0: forward jumps are never gaps
        self._offset = 0.0  # tracker time = source time + offset
        self._last_pts: float | None = None

    def __call__(self, pts: float) -> tuple[float, Discontinuity | None]:
        """The tracker time for a frame at source time ``pts``, and the discontinuity
        just before it (None when time simply moved on)."""
        last, event = self._last_pts, None
        if last is not None and pts <= last:  # back, or standing still: one frame on
            if pts < last:
                event = Discontinuity(Jump.BACK, last, pts)
            self._offset = last + self._offset + self.period - pts
        elif (last is not None and self.max_gap > 0 and pts - last > self.max_gap
              and pts - last > MIN_GAP_FRAMES * self.period):
            event = Discontinuity(Jump.GAP, last, pts)
        self._last_pts = pts
        return pts + self._offset, event
