"""Raw engine outputs → detections with masks (YOLO-seg) or class maps (semantic), and the
decode+track stage."""
