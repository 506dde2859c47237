"""URI helpers shared by sources and sinks: credentials never reach logs or outputs."""

from __future__ import annotations

import re

# ``scheme://user:password@host``, anywhere in a string: a URL, or a URL inside a GStreamer
# pipeline (``gst://rtspsrc location=rtsp://admin:pw@cam …``). The password runs to the last
# ``@`` before the host, so one with an ``@`` in it is hidden whole.
_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][\w+.-]*://)(?P<user>[^:/@\s]*)"
                          r"(?::(?P<password>[^/\s]*))?@(?=[^/@\s]*(?:[/\s?#]|$))")


def redact(uri: str) -> str:
    """``rtsp://user:secret@host/x`` → ``rtsp://user:***@host/x``, also for URLs embedded in
    the text (GStreamer pipelines); other text unchanged."""
    return _CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:***@"
                            if m["password"] is not None else m.group(0), uri)


def passwords(uri: str) -> list[str]:
    """Every password written in ``uri`` (and URLs inside it)."""
    return [m["password"] for m in _CREDENTIALS.finditer(uri) if m["password"]]


def scrub(text: str, uri: str) -> str:
    """Remove ``uri``'s passwords from any message (FFmpeg errors may quote the URL)."""
    out = text.replace(uri, redact(uri))
    for password in passwords(uri):
        out = out.replace(password, "***")
    return redact(out)


def is_live(uri: str) -> bool:
    """Network streams and cameras (not files or folders)."""
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    return scheme in {"rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt", "csi",
                      "gst", "v4l2"} or uri.startswith("/dev/video")
