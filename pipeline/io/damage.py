"""Where a damaged or truncated video file lost frames, in the file's own numbering.

A :class:`DecodeLedger` notes every video packet the demuxer read (its timestamp), every
packet the decoder refused, and every frame delivered; timestamps are kept in compact
int64 arrays (8 bytes a frame: 21 MB for a day of 30 FPS video), not Python sets. At the end the frames that were
read but never came out, and those the file's index promised but the demuxer never
reached (a truncated file), are the lost ones, reported as ranges of source frame numbers
(presentation order) and times: ``frames 75-80 (3.00-3.20 s)``.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from fractions import Fraction

import numpy as np


@dataclass(frozen=True)
class Lost:
    """Source frames ``first``..``last`` (inclusive, presentation order), seconds
    ``t0``..``t1`` from the file's start; ``missing``: past the end of the readable data."""

    first: int
    last: int
    t0: float
    t1: float
    missing: bool = False

    def describe(self) -> str:
        frames = f"frame {self.first}" if self.first == self.last else \
            f"frames {self.first}-{self.last}"
        times = f"{self.t0:.2f} s" if self.first == self.last else f"{self.t0:.2f}-{self.t1:.2f} s"
        return f"{frames} ({times})"


class DecodeLedger:
    """The bookkeeping of one file's decode; timestamps in ``time_base`` units."""

    def __init__(self, time_base: Fraction, start: int, rate: Fraction,
                 total: int | None) -> None:
        self.time_base = time_base
        self.start = start
        self.rate = rate if rate > 0 else Fraction(30)
        self.total = total  # frames the file's index lists (None: unknown)
        self._read = array("q")
        self._delivered = array("q")
        self.errors = 0
        self.first_error = ""
        self.gave_up = False  # stopped reading: too many unreadable packets in a row

    def read(self, pts: int | None) -> None:
        if pts is not None:
            self._read.append(pts)

    def refused(self, reason: str) -> None:
        self.errors += 1
        self.first_error = self.first_error or reason

    def delivered(self, pts: int | None) -> None:
        if pts is not None:
            self._delivered.append(pts)

    def seconds(self, pts: int) -> float:
        return float((pts - self.start) * self.time_base)

    def lost(self) -> list[Lost]:
        """The lost frames as ranges, in order; empty when every frame came out."""
        read, delivered = np.frombuffer(self._read, np.int64), np.frombuffer(self._delivered,
                                                                             np.int64)
        order = np.union1d(read, delivered)
        gone = np.flatnonzero(~np.isin(order, delivered)).tolist()
        out: list[Lost] = []
        for i in gone:
            if out and out[-1].last == i - 1:
                out[-1] = Lost(out[-1].first, i, out[-1].t0, self.seconds(int(order[i])))
            else:
                t = self.seconds(int(order[i]))
                out.append(Lost(i, i, t, t))
        if self.total is not None and self.total > len(order):  # never reached
            n = len(order)
            t0 = self.seconds(int(order[-1])) + float(1 / self.rate) if len(order) else 0.0
            t1 = t0 + float((self.total - 1 - n) / self.rate)
            if out and out[-1].last == n - 1:
                out[-1] = Lost(out[-1].first, self.total - 1, out[-1].t0, t1, missing=True)
            else:
                out.append(Lost(n, self.total - 1, t0, t1, missing=True))
        return out

    def report(self, name: str) -> str | None:
        """One line saying what was lost and how much came through, or None."""
        lost = self.lost()
        if not lost and not self.errors:
            return None
        delivered = int(np.unique(np.frombuffer(self._delivered, np.int64)).size)
        processed = f"{delivered}{f' of {self.total}' if self.total else ''} " \
            "frame(s) were processed"
        cause = [f"{self.errors} unreadable packet(s): {self.first_error}"] if self.errors else []
        if not lost:
            return f"{name}: damaged: {cause[0]}, no frame found missing; {processed}"
        truncated = lost[-1].missing
        if truncated:
            cause.append("unreadable from there on" if self.gave_up else "the file ends early")
        where = ", ".join(r.describe() for r in lost)
        n_lost = sum(r.last - r.first + 1 for r in lost)
        return (f"{name}: {'truncated' if truncated else 'damaged'}: {where} lost "
                f"({n_lost} frame(s); {'; '.join(cause)}); {processed}")
