"""The archive job: segment a folder, a glob or a list of video files once, one pipeline
per file, on this machine (a process pool) or on a Ray cluster (Ray Data, an actor pool).

Every file's outputs are written under temporary names and renamed when complete, and a
status record written last marks the file done, so a job can be killed at any point and
run again: finished files are skipped, a file processed twice leaves one set of outputs.

- ``discover``: the input files and the names of their outputs
- ``layout``: where each file's outputs, temporary names and status record live
- ``tables``: the Parquet dataset (one row per detection) and ``files.parquet``
- ``job``: one file through one pipeline, outputs committed atomically
- ``local`` / ``ray_runner``: the two ways of running many jobs
- ``cli``: ``maskstream archive``
"""
