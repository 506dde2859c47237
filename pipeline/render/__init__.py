"""Overlays: masks, boxes, labels, trails and class maps drawn on the frame."""
