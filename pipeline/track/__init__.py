"""Multi-object tracking and re-identification."""
