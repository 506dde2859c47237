"""Where frames come from and go to: sources (files, image folders, live streams) and
sinks (video, RTSP, JSONL, display)."""
