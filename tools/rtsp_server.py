#!/usr/bin/python3
"""A real RTSP server on 127.0.0.1 for tests and demos (GStreamer's gst-rtsp-server).

    /usr/bin/python3 tools/rtsp_server.py --video clip.mp4 [--port 8554] [--mount /cam]
    /usr/bin/python3 tools/rtsp_server.py --record /publish --record-port 9100

Run it with Debian's Python: the ``gi`` bindings (python3-gi, gir1.2-gst-rtsp-server-1.0)
do not import from a virtual environment.

``--video`` serves an H.264 mp4 at ``rtsp://127.0.0.1:PORT/MOUNT`` in real time, from its
start for every client (SPS/PPS repeated with every key frame, so late joiners decode).
``--record`` accepts a published H.264 stream (RTSP ANNOUNCE/RECORD) at that mount and
relays it as MPEG-TS on ``tcp://127.0.0.1:RECORD_PORT``, so ffprobe or OpenCV can read
what was published while it runs. Prints ``ready <url>`` once listening; stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402 - after require_version


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video", help="H.264 mp4 to serve")
    ap.add_argument("--mount", default="/cam")
    ap.add_argument("--port", type=int, default=8554)
    ap.add_argument("--record", help="mount that accepts a published stream, e.g. /publish")
    ap.add_argument("--record-port", type=int, default=9100, help="TCP port of the MPEG-TS relay")
    args = ap.parse_args()
    if not args.video and not args.record:
        ap.error("give --video, --record or both")

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    urls = []
    if args.video:
        factory = GstRtspServer.RTSPMediaFactory()
        location = args.video.replace("\\", "\\\\").replace('"', '\\"')
        factory.set_launch(f'( filesrc location="{location}" ! qtdemux ! h264parse ! '
                           "rtph264pay name=pay0 pt=96 config-interval=-1 )")
        factory.set_shared(False)
        mounts.add_factory(args.mount, factory)
        urls.append(f"rtsp://127.0.0.1:{args.port}{args.mount}")
    if args.record:
        rec = GstRtspServer.RTSPMediaFactory()
        rec.set_transport_mode(GstRtspServer.RTSPTransportMode.RECORD)
        rec.set_launch("( rtph264depay name=depay0 ! h264parse config-interval=-1 ! mpegtsmux ! "
                       f"tcpserversink host=127.0.0.1 port={args.record_port} sync=false )")
        rec.set_latency(0)
        mounts.add_factory(args.record, rec)
        urls.append(f"rtsp://127.0.0.1:{args.port}{args.record}")
    if server.attach(None) == 0:
        print(f"rtsp_server: error: cannot listen on 127.0.0.1:{args.port}", file=sys.stderr)
        return 1
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, loop.quit)
    print("ready " + " ".join(urls), flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
