#!/usr/bin/env python3
"""Install TensorRT's type stubs where mypy reads them, and fix the two syntax errors in them.

    python tools/trt_stubs.py [TARGET]        (default .venv/typings; mypy_path points there)

``tensorrt-stubs`` 10.13.0.35.1 (the newest on PyPI; it describes the TensorRT 10.13
Python API) cannot be used as a plain dependency:

- it requires ``tensorrt==10.13.0.35``, whose wheel downloads TensorRT itself from NVIDIA's
  index at install time: without that index (CI, air-gapped machines) the install fails.
  So it is installed here with ``--no-deps``;
- its ``tensorrt/`` folder holds only ``__init__.pyi`` and no ``py.typed``, so mypy skips
  it inside site-packages, and Python imports it as an empty namespace package that
  looks like an installed TensorRT. So it goes to a folder of its own, on ``mypy_path``;
- ``tensorrt_bindings/tensorrt.pyi`` is not valid Python: four plugin methods name a
  parameter ``in`` and ``add_scale_nd`` has a required parameter after defaulted ones.
  Those lines are rewritten (``in`` → ``in_``; ``channel_axis: int = ...``) and the file is
  checked with ``ast.parse``.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

VERSION = "10.13.0.35.1"


def patch(pyi: Path) -> int:
    """Fix the known syntax errors in place; return how many lines changed."""
    lines = pyi.read_text().splitlines(keepends=True)
    changed = 0
    for i, line in enumerate(lines):
        new = re.sub(r"(\(self(?:: \w+)?, )in: ", r"\1in_: ", line)
        if line.lstrip().startswith("def add_scale_nd("):
            new = new.replace("channel_axis: int)", "channel_axis: int = ...)")
        if new != line:
            lines[i] = new
            changed += 1
    pyi.write_text("".join(lines))
    ast.parse(pyi.read_text(), filename=str(pyi))
    return changed


def main() -> int:
    target = Path(sys.argv[1] if len(sys.argv) > 1 else ".venv/typings")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    "--no-deps", "--upgrade", "--target", str(target),
                    f"tensorrt-stubs=={VERSION}"], check=True)
    n = patch(target / "tensorrt_bindings" / "tensorrt.pyi")
    for stub in (target / "tensorrt" / "__init__.pyi", target / "tensorrt_bindings" / "__init__.pyi"):
        ast.parse(stub.read_text(), filename=str(stub))
    print(f"tensorrt-stubs {VERSION} in {target} ({n} line(s) fixed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
