"""Running the CLI in a fresh process."""

from __future__ import annotations

import signal
import subprocess
import sys

from tests.helpers.paths import ROOT


def run_cli(*args: str, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    """``python -m pipeline ARGS`` in a fresh process, killed if it overruns ``timeout``."""
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, **kw)


def start_cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pipeline", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)


def interrupt(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)


def stop_process(proc: subprocess.Popen) -> None:
    """Terminate ``proc``, kill it if it has not ended within 5 s, and reap it."""
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
