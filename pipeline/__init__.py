"""maskstream: a threaded real-time video segmentation pipeline."""

__version__ = "0.1.0"
