"""Helpers shared by the test files: paths, writing files, running the commands as a
user would, free ports. Import them with `from conftest import ...`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ATIS = ROOT.parent / "shared" / "data" / "atis"  # never copied into the project
QUIET_TF = {"TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0", "CUDA_VISIBLE_DEVICES": ""}


def write(path, content) -> Path:
    """Writes text (UTF-8) or bytes, or a folder from a dict name -> content; returns
    the path."""
    path = Path(path)
    if isinstance(content, dict):
        path.mkdir(parents=True, exist_ok=True)
        for name, value in content.items():
            write(path / name, value)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def run(args, cwd=ROOT, timeout: float = 300, env: dict | None = None):
    """Runs `python ARGS` in `cwd` (TensorFlow quiet, CPU only); stdout and stderr
    decoded leniently."""
    result = subprocess.run(
        [sys.executable, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        timeout=timeout,
        env={**os.environ, **QUIET_TF, **(env or {})},
    )
    result.stdout = result.stdout.decode("utf-8", "replace")
    result.stderr = result.stderr.decode("utf-8", "replace")
    return result


def explain(result) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def free_ports(count: int) -> list[int]:
    """`count` TCP ports of 127.0.0.1 that nothing listens on (now)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@pytest.fixture(autouse=True)
def _environment_kept():
    """The command lines set TensorFlow's environment variables for their process
    (`cli._quiet_tensorflow`); a test that runs one in-process must not leave them to
    the tests after it, whose child processes would then run TensorFlow configured
    otherwise than this process (oneDNN off there, on here: other float rounding)."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
