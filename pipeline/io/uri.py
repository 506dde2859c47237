"""URI helpers shared by sources and sinks: credentials never reach logs or outputs."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


def redact(uri: str) -> str:
    """``rtsp://user:secret@host/x`` → ``rtsp://user:***@host/x``; other text unchanged."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return _USERINFO.sub("***@", uri)
    if parts.password is None and parts.username is None:
        return uri
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    netloc = f"{user}:***@{host}" if parts.password is not None else f"{user}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def scrub(text: str, uri: str) -> str:
    """Remove ``uri``'s password from any message (FFmpeg errors may quote the URL)."""
    try:
        password = urlsplit(uri).password
    except ValueError:
        password = None
    out = text.replace(uri, redact(uri))
    if password:
        out = out.replace(password, "***")
    return out


def is_live(uri: str) -> bool:
    """Network streams and cameras (not files or folders)."""
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    return scheme in {"rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt", "csi",
                      "gst", "v4l2"} or uri.startswith("/dev/video")
