"""One writer per model folder: the operating system's lock on a file next to it
(`models/.NAME.lock`, holding the writer's process id), held for a whole training run.

The kernel drops the lock when its process ends, however it ends, so a `kill -9`
leaves no stale lock behind: the file may stay, the lock does not. A second run on the
same folder is refused at once, naming the process that holds it."""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from slotkeras.file_writing import writing


class FolderLockedError(Exception):
    """Another process is writing the model folder."""


def lock_path(output: str | os.PathLike) -> Path:
    output = Path(output)
    return output.parent / f".{output.name}.lock"


@contextmanager
def hold(output: str | os.PathLike):
    """Holds the lock of model folder `output` for the block; raises FolderLockedError
    at once when another process holds it, and WriteError when the lock file cannot be
    written (a read-only disk)."""
    path = lock_path(output)
    descriptor = _acquire(path, output)
    try:
        holder = {"pid": os.getpid(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        holder["command"] = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else ""
        with writing(path):
            os.ftruncate(descriptor, 0)
            os.pwrite(descriptor, (json.dumps(holder) + "\n").encode("utf-8"), 0)
        yield
    finally:
        # Removed while still held: a process that opened it meanwhile finds, once it
        # has the lock, that the path no longer names its file, and tries again.
        path.unlink(missing_ok=True)
        os.close(descriptor)


def _acquire(path: Path, output) -> int:
    while True:
        with writing(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(descriptor)
            os.close(descriptor)
            raise FolderLockedError(
                f"{output} is being trained by {holder}; wait for it or choose another --output"
            ) from None
        try:
            if os.path.samestat(os.fstat(descriptor), os.stat(path)):
                return descriptor
        except FileNotFoundError:
            pass  # its holder removed it between our open and our lock
        os.close(descriptor)


def _holder(descriptor: int) -> str:
    """The holder as its lock file names it: "process 1234 (train.py ..., since ...)"."""
    try:
        holder = json.loads(os.pread(descriptor, 4096, 0).decode("utf-8"))
        return f"process {int(holder['pid'])} ({holder['command']}, since {holder['started']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"  # it has the lock but has not written its name yet
