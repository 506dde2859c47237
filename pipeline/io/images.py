"""Reading one image file, with a reason when it cannot be used.

OpenCV decodes a JPEG cut short as a partly grey image and only prints libjpeg's
"Premature end of JPEG file" (naming no file) to stderr; a PNG cut short fails with
libpng's "Read Error" on stderr. So JPEG and PNG files are checked for their end first
(the end-of-image marker after the image data; the IEND chunk), and an incomplete one is
never handed to the decoder: it is reported here, with its name, instead.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

JPEG_START = b"\xff\xd8"
PNG_START = b"\x89PNG\r\n\x1a\n"


def _jpeg_problem(data: bytes) -> str | None:
    """Why a JPEG is incomplete, or None. Walks the marker segments to the first
    start-of-scan (an EXIF thumbnail before it has an end marker of its own), then looks
    for the end-of-image marker after it (entropy-coded data never holds 0xFFD9)."""
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return "not a valid JPEG: bad marker"
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0xDA:  # start of scan
            return None if data.find(b"\xff\xd9", i) >= 0 else \
                "truncated JPEG: the image data ends early"
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # no length
            i += 2
            continue
        i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
    return "truncated JPEG: no image data"


def _png_problem(data: bytes) -> str | None:
    """Why a PNG is incomplete, or None: walks the chunks to IEND."""
    i = len(PNG_START)
    while i + 8 <= len(data):
        length = int.from_bytes(data[i:i + 4], "big")
        if data[i + 4:i + 8] == b"IEND":
            return None
        i += 12 + length
    return "truncated PNG: no IEND chunk"


def read_image(path: Path) -> tuple[np.ndarray | None, str]:
    """(H×W×3 uint8 BGR image, "") or (None, why it cannot be used)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, f"cannot read it: {exc.strerror}"
    if not data:
        return None, "empty file"
    problem = None
    if data.startswith(JPEG_START):
        problem = _jpeg_problem(data)
    elif data.startswith(PNG_START):
        problem = _png_problem(data)
    if problem:
        return None, problem
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        return None, "not a readable image"
    return image, ""
