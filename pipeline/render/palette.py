"""Colours: one per track (or per class while untracked), and the text colour that reads
on each."""

from __future__ import annotations

import numpy as np

from pipeline.types import Detections

# BGR, well separated hues (supervision's default palette order)
PALETTE = np.array([
    (68, 40, 163), (30, 140, 255), (59, 160, 26), (196, 152, 0), (214, 65, 147),
    (54, 187, 255), (170, 92, 39), (90, 215, 112), (255, 180, 120), (66, 94, 232),
    (230, 230, 230), (0, 200, 200), (125, 30, 190), (20, 110, 90), (160, 160, 60),
], np.uint8)
HEAD_COLOURS = np.array([(0, 200, 0), (0, 0, 255), (255, 128, 0), (255, 0, 255)], np.uint8)
WHITE = np.array((255, 255, 255), np.uint8)
BLACK = np.array((0, 0, 0), np.uint8)


def instance_colours(det: Detections) -> np.ndarray:
    """(N, 3) uint8 BGR: tracked instances keep one colour per track id, others are
    coloured by class."""
    keys = np.where(det.track_ids >= 0, det.track_ids, det.class_ids.astype(np.int64))
    return PALETTE[keys % len(PALETTE)]


def track_colours(track_ids: np.ndarray) -> np.ndarray:
    """(N, 3) uint8 BGR colour of each track id (as :func:`instance_colours`)."""
    return PALETTE[np.asarray(track_ids, np.int64) % len(PALETTE)]


def text_colours(backgrounds: np.ndarray) -> np.ndarray:
    """(N, 3) uint8: black on light backgrounds, white on the others (BGR in, BGR out)."""
    bg = np.asarray(backgrounds, np.float32).reshape(-1, 3)
    luma = bg @ np.array([0.114, 0.587, 0.299], np.float32)
    return np.where((luma > 160)[:, None], BLACK, WHITE)
