"""What a stage, a source and a sink look like to the runner.

Stage code is a plain object: it never touches threads, rings or signals. The runner
calls ``start()`` in the worker thread before the first item (open sessions, allocate
buffers there), ``process()`` per item, and ``stop()`` once at the end, always.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from fractions import Fraction

from pipeline.types import Frame


class Stage:
    """A transform: one frame in, one frame out."""

    name = "stage"

    def start(self) -> None:
        """Called once in the worker thread before the first ``process``."""

    def process(self, frame: Frame) -> Frame:
        raise NotImplementedError

    def process_batch(self, frames: list[Frame]) -> list[Frame]:
        """Several frames at once (the runner batches when asked to); one result each, in
        order. Stages that gain from batching (inference) override this."""
        return [self.process(f) for f in frames]

    def stop(self) -> None:
        """Called once in the worker thread after the last ``process`` (also on error)."""


class Source:
    """Produces frames until the stream ends or ``stop`` is set."""

    name = "source"
    source_id = "src0"
    target = ""  # what the user named: a path or a redacted URL, for messages
    # set by a source that could not be read whole (damaged video, unreadable images): what
    # was lost; the run finishes what it could read, then fails with this
    incomplete: str | None = None
    live = False  # live sources get DROP_OLDEST rings and never end on their own
    total_frames: int | None = None  # known length for files (progress bars)
    fps: float = 0.0
    rate: Fraction = Fraction(30)  # nominal frame rate, exact (for writers)

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the device or file; called once, from the source's thread."""


class Sink:
    """Consumes frames; ``close()`` finalizes the output (always called).

    A sink whose ``write`` or ``close`` raises has failed: it alone stops (its frames are
    counted as dropped), the other outputs and the pipeline go on, and the run ends with
    a :class:`~pipeline.errors.SinkError` naming ``target``. A network output that can
    come back handles its own outages instead of raising (``network``: its ring drops the
    oldest frame rather than holding up the pipeline).
    """

    name = "sink"
    target = ""  # what the user named: a path or a redacted URL, for messages
    network = False

    @property
    def dropped(self) -> int:
        """Frames it was handed but could not deliver (a network output while its server
        was away); they count as dropped, not written."""
        return 0

    def write(self, frame: Frame) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Finalize the output; called once, also after an error upstream."""

    def abort(self) -> None:
        """Instead of ``close`` when the pipeline never started (building failed): remove
        whatever opening created, so a failed start leaves no empty output behind."""
        self.close()
