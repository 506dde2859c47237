"""A glyph atlas drawn once per text size: labels are strips of glyph cells.

Both renderers draw text from the same atlas: the host blits a label's strip
(:meth:`GlyphAtlas.strip`), the device overlay draws every glyph cell of every label in
one pass. Each printable ASCII character is drawn once with OpenCV's Hershey font
(anti-aliased) into a cell of the atlas's common height; the coverage (0..255) blends
the text colour over the label's background.

Text size follows the frame, the way supervision's ``calculate_optimal_text_scale``
scales labels: the height of a capital or a digit is about 1.6% of the frame's shorter
side (17 px at 1080p, 35 px at 2160p) and never under 9 px (OpenCV scale 0.45), unless a
fixed scale is asked for. Strokes thicken with the size.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
FIRST, LAST = 32, 126  # printable ASCII; anything else is drawn as '?'
MIN_SCALE = 0.45
CAP_HEIGHT = 20.0  # a capital's height in pixels at OpenCV scale 1 (Hershey simplex)


def auto_text_scale(frame_wh: tuple[int, int]) -> float:
    """OpenCV font scale for a frame size: capitals 1.6% of the shorter side tall."""
    return max(MIN_SCALE, 0.016 * min(frame_wh) / CAP_HEIGHT)


@dataclass(frozen=True)
class GlyphAtlas:
    """Glyph cells side by side in one coverage image.

    coverage: (height, total_width) uint8. x: (128,) int64 first column of each
    character's cell; width: (128,) int64 cell widths (0 for unknown codes, which map to
    '?'). height: the common cell height.
    """

    scale: float
    thickness: int
    coverage: np.ndarray
    x: np.ndarray
    width: np.ndarray

    @property
    def height(self) -> int:
        return int(self.coverage.shape[0])

    @classmethod
    def build(cls, scale: float) -> GlyphAtlas:
        thickness = max(1, round(scale * 1.8))
        (_, asc), desc = cv2.getTextSize("Ag", FONT, scale, thickness)
        margin = thickness + 1
        h = asc + desc + 2 * margin
        cells = []
        x = np.zeros(128, np.int64)
        width = np.zeros(128, np.int64)
        at = 0
        for code in range(FIRST, LAST + 1):
            ch = chr(code)
            (adv, _), _ = cv2.getTextSize(ch, FONT, scale, thickness)
            canvas = np.zeros((h, adv + 4 * margin), np.uint8)
            cv2.putText(canvas, ch, (2 * margin, margin + asc), FONT, scale, 255, thickness,
                        cv2.LINE_AA)
            ink = np.flatnonzero(canvas.any(axis=0))
            left = min(int(ink[0]), 2 * margin) if len(ink) else 2 * margin
            right = max(int(ink[-1]) + 1, 2 * margin + adv) if len(ink) else 2 * margin + adv
            cells.append(canvas[:, left:right])
            x[code], width[code] = at, right - left
            at += right - left
        return cls(scale, thickness, np.ascontiguousarray(np.concatenate(cells, axis=1)), x, width)

    def codes(self, text: str) -> np.ndarray:
        """(len(text),) int64 character codes, unknown characters as '?'."""
        c = np.frombuffer(text.encode("ascii", "replace"), np.uint8).astype(np.int64)
        return np.where((c >= FIRST) & (c <= LAST), c, ord("?"))

    def text_width(self, text: str) -> int:
        widths = self.width
        return int(sum(int(widths[c]) if FIRST <= c <= LAST else int(widths[63])
                       for c in text.encode("ascii", "replace")))

    def strip(self, text: str) -> np.ndarray:
        """(height, text_width) uint8 coverage of ``text``: its glyph cells side by side."""
        codes = self.codes(text)
        widths = self.width[codes]
        starts = np.repeat(self.x[codes] - (np.cumsum(widths) - widths), widths)
        return self.coverage[:, starts + np.arange(int(widths.sum()))]
