"""The archive on a Ray cluster, through Ray Data: the file list is a dataset of one row
per file, mapped by a fixed pool of actors. Each actor opens its engines once (on its own
GPU with ``gpus_per_worker=1``: Ray sets ``CUDA_VISIBLE_DEVICES``) and runs one file's
pipeline at a time.

One task in flight per actor, so files wait in the driver's queue rather than behind a
busy or dying actor, and a node that dies loses only the files it was running. Ray Data
restarts the lost actors and retries their files (``max_restarts`` / ``max_task_retries``
-1, its defaults for actor pools); the job's attempts count stops a file that kills
every actor it lands on, and files that fail for their own reasons come back as rows with
``status`` ``failed``, never as task errors, so they are not retried.

``DIR`` must be a filesystem every node mounts (NFS, a ReadWriteMany volume): workers
write the outputs there and the driver reads the status records from it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.archive.discover import InputFile
from pipeline.archive.job import EngineSet, JobSettings, process_file
from pipeline.archive.result import FileResult
from pipeline.errors import BackendUnavailable, ConfigError, EngineError

log = logging.getLogger(__name__)

INSTALL = "pip install 'maskstream[ray]'"


def import_ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError:
        raise BackendUnavailable(f"--ray needs Ray with Ray Data: {INSTALL}") from None
    return ray


class FrameCounter:
    """A small actor (no CPU) that adds up the frames every worker reports."""

    def __init__(self) -> None:
        self.frames = 0

    def add(self, n: int) -> None:
        self.frames += n

    def total(self) -> int:
        return self.frames


class ArchiveActor:
    """The Ray Data callable: one instance per actor, holding that actor's engines."""

    def __init__(self, settings: JobSettings, engines: int, counter: Any,
                 log_level: int = logging.WARNING) -> None:
        logging.basicConfig(level=log_level, format="%(levelname)s %(name)s: %(message)s")
        self.settings = settings
        self.engines = EngineSet(settings.config.model, engines)
        self.counter = counter

    def _add_frames(self, n: int) -> None:
        self.counter.add.remote(n)  # fire and forget

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        rows = [process_file(InputFile(Path(str(path)), str(rel)), self.settings, self.engines,
                             self._add_frames).to_dict()
                for path, rel in zip(batch["path"], batch["rel"], strict=True)]
        return {key: [row[key] for row in rows] for key in rows[0]}


class RayRunner:
    """Runs the archive on the cluster at ``address`` (None: ``RAY_ADDRESS``, a cluster
    started on this machine, or a new local one)."""

    def __init__(self, settings: JobSettings, address: str | None, workers: int | None,
                 gpus_per_worker: float, engines: int,
                 log_level: int = logging.WARNING) -> None:
        if gpus_per_worker < 0:
            raise ConfigError(f"--gpus-per-worker: expected a number >= 0, got {gpus_per_worker}")
        model = settings.config.model
        device = model.device
        if gpus_per_worker > 0 and not device.startswith("cuda"):
            device = "cuda"  # the actor's own GPU (CUDA_VISIBLE_DEVICES)
        elif gpus_per_worker == 0 and device == "auto":
            device = "cpu"  # an actor with no GPU of its own must not take one
        config = dataclasses.replace(settings.config,
                                     model=dataclasses.replace(model, device=device))
        self.settings = dataclasses.replace(settings, config=config)
        self.address, self.workers, self.gpus = address or None, workers, gpus_per_worker
        self.engines, self.log_level = max(1, engines), log_level
        self._ray: Any = None
        self._counter: Any = None

    def frames(self) -> int:
        if self._counter is None:
            return 0
        return int(self._ray.get(self._counter.total.remote(), timeout=5))

    def pool_size(self, files: int) -> int:
        """``workers``, or as many actors as the cluster has GPUs (CPUs) for."""
        if self.workers:
            return max(1, min(self.workers, files))
        res = self._ray.cluster_resources()
        if self.gpus > 0:
            fit = int(res.get("GPU", 0) // self.gpus)
        else:
            fit = int(res.get("CPU", 1) // self._cpus())
        return max(1, min(fit, files))

    def _cpus(self) -> float:
        return 1.0 if self.gpus > 0 else float(self.engines)

    def connect(self) -> None:
        ray = import_ray()
        self._ray = ray
        if not ray.is_initialized():
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            ray.init(address=self.address, logging_level=logging.WARNING,
                     configure_logging=True, log_to_driver=True)
        # the archive draws its own progress bars; Ray Data's notices stay quiet unless --debug
        logging.getLogger("ray.data").setLevel(
            logging.WARNING if self.log_level <= logging.DEBUG else logging.ERROR)
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.execution_options.preserve_order = False
        self._counter = ray.remote(num_cpus=0)(FrameCounter).remote()

    def run(self, todo: list[InputFile]) -> Iterator[FileResult]:
        """Results as files finish, in no particular order."""
        if self._ray is None:
            self.connect()
        ray = self._ray
        size = self.pool_size(len(todo))
        log.info("archive on Ray: %d actor(s), %s CPU and %s GPU each", size, self._cpus(),
                 self.gpus)
        ds = ray.data.from_items([{"path": str(f.path), "rel": f.rel} for f in todo],
                                 override_num_blocks=len(todo))
        out = ds.map_batches(
            ArchiveActor, batch_size=1, batch_format="numpy",
            fn_constructor_kwargs={"settings": self.settings, "engines": self.engines,
                                   "counter": self._counter, "log_level": self.log_level},
            compute=ray.data.ActorPoolStrategy(size=size, max_tasks_in_flight_per_actor=1),
            num_cpus=self._cpus(), num_gpus=self.gpus or None)
        try:
            for row in out.iter_rows():
                yield FileResult.from_dict({k: v.item() if isinstance(v, np.generic) else v
                                            for k, v in row.items()})
        except ray.exceptions.RayError as exc:  # e.g. no actor could load the model
            first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise EngineError(f"the archive's Ray job failed: {first}") from exc

    def close(self) -> None:
        if self._ray is not None and self._ray.is_initialized():
            self._ray.shutdown()
        self._ray = self._counter = None
