"""Sinks: one URI-based factory (``open_sink``) plus the display and null outputs.

``out.mp4`` / ``.mkv`` / ``.avi`` → video file, ``rtsp://`` → publish to an RTSP server,
``out.jsonl`` → metadata, ``mqtt://`` → metadata as messages to a broker
(:mod:`pipeline.io.mqtt_sink`), ``display://`` → a window, ``null://`` → nothing (benchmarks).
"""

from __future__ import annotations

import os
from fractions import Fraction

from pipeline.errors import BackendUnavailable, SinkError
from pipeline.io.jsonl_sink import JsonlSink
from pipeline.io.video_sink import VideoSink
from pipeline.runtime.stage import Sink
from pipeline.types import Frame

VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".mov")


class NullSink(Sink):
    """Takes frames and does nothing with them."""

    name = "sink:null"

    def write(self, frame: Frame) -> None:
        pass


class DisplaySink(Sink):
    """An OpenCV window per source; needs a screen (``DISPLAY`` or Wayland)."""

    name = "sink:display"

    def __init__(self) -> None:
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise BackendUnavailable("display:// needs a screen (DISPLAY is not set)")
        self._windows: set[str] = set()

    def write(self, frame: Frame) -> None:
        import cv2

        title = f"maskstream {frame.source_id}"
        self._windows.add(title)
        cv2.imshow(title, frame.rendered_pixels())
        cv2.waitKey(1)

    def close(self) -> None:
        import cv2

        for title in self._windows:
            cv2.destroyWindow(title)


METADATA_SCHEMES = ("mqtt://", "mqtts://")


def is_network(uri: str) -> bool:
    """Outputs that can stall on the network: their ring drops the oldest frame instead.
    (Not MQTT: its sink never waits for the broker, it has a drop-oldest outbox of its
    own, so its ring blocks like a file's and a file run loses no message on the way.)"""
    return uri.startswith("rtsp://")


def needs_render(uri: str) -> bool:
    """Whether a sink shows pictures (JSONL, MQTT and null do not)."""
    return not (uri.endswith(".jsonl") or uri.startswith(("null://", *METADATA_SCHEMES)))


def open_sink(uri: str, rate: Fraction, codec: str = "auto") -> Sink:
    if uri.startswith("null://"):
        return NullSink()
    if uri.startswith("display://"):
        return DisplaySink()
    if uri.startswith("rtsp://"):
        return VideoSink(uri, rate, codec)
    if uri.startswith(METADATA_SCHEMES):
        from pipeline.io.mqtt_sink import MqttSink

        return MqttSink(uri)
    if "://" in uri:
        raise SinkError(f"{uri.split('://')[0]}:// outputs are not supported yet")
    if uri.endswith(".jsonl"):
        return JsonlSink(uri)
    if uri.lower().endswith(VIDEO_SUFFIXES):
        return VideoSink(uri, rate, codec)
    raise SinkError(f"unknown output {uri!r}: expected a {'/'.join(VIDEO_SUFFIXES)} or .jsonl "
                    "path, rtsp://, mqtt://, display:// or null://")
