"""The KubeRay manifest stays in step with the command line it runs."""

from __future__ import annotations

import shlex

import yaml

from pipeline.cli import parser
from tests.helpers import ROOT


def test_rayjob_entrypoint_is_a_valid_archive_command_on_gpus() -> None:
    docs = list(yaml.safe_load_all((ROOT / "deploy" / "kuberay" / "rayjob.yaml").read_text()))
    job = next(d for d in docs if d["kind"] == "RayJob")
    argv = shlex.split(job["spec"]["entrypoint"])
    assert argv[0] == "maskstream"
    args = parser().parse_args(argv[1:])
    assert args.command == "archive" and args.ray == "" and args.gpus_per_worker == 1
    workers = job["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"]
    gpus = workers["containers"][0]["resources"]["limits"]["nvidia.com/gpu"]
    assert gpus >= args.gpus_per_worker  # an actor fits on a worker pod
    claim = next(d for d in docs if d["kind"] == "PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]  # every pod writes the outputs
