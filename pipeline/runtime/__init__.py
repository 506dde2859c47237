"""The runtime: rings, the stage runner and its worker pool, metrics."""
