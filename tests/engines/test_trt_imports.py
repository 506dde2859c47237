"""The TensorRT backend imports without TensorRT, ModelOpt or a CUDA context."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import ROOT

MODULES = ["engines.tensorrt", "engines.tensorrt.builder", "engines.tensorrt.cache",
           "engines.tensorrt.calibration", "engines.tensorrt.dtypes", "engines.tensorrt.engine",
           "engines.tensorrt.gpu", "engines.tensorrt.header", "engines.tensorrt.network",
           "engines.tensorrt.plan", "engines.tensorrt.precision", "engines.tensorrt.profiles",
           "engines.tensorrt.version", "pipeline.build_engine"]


def test_importing_the_backend_loads_nothing_heavy() -> None:
    code = (
        "import sys\n"
        f"for m in {MODULES!r}: __import__(m)\n"
        "import torch\n"
        "heavy = [m for m in ('tensorrt', 'modelopt', 'pycuda', 'onnx') if m in sys.modules]\n"
        "print(heavy, torch.cuda.is_initialized())\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[] False"
