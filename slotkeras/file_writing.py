"""Writing files so that a reader, or a `kill -9`, sees the old file or the new one,
never a part; and a disk that refuses a write (full, read-only) reported as the
user's environment, in one line naming the file."""

from __future__ import annotations

import json
import os
import secrets
from contextlib import contextmanager
from pathlib import Path


class WriteError(Exception):
    """A file or folder that could not be written (a full or read-only disk, no
    permission): names it and the system's reason. What was there stays as it was."""


@contextmanager
def writing(path: str | os.PathLike, errors: tuple = ()):
    """Turns an OSError (or one of `errors`, such as TensorFlow's file errors) raised
    inside the block into a WriteError: "cannot write PATH: No space left on device"."""
    try:
        yield
    except (OSError, *errors) as error:
        reason = getattr(error, "strerror", None) or getattr(error, "message", None) or error
        # TensorFlow's errors end with the system's reason: "...; No space left on device".
        lines = str(reason).strip().splitlines() or [type(error).__name__]
        reason = lines[0].rsplit("; ", 1)[-1]
        raise WriteError(f"cannot write {path}: {reason}") from error


def atomic_write(path: str | os.PathLike, payload: bytes | str) -> None:
    """Writes `payload` (text as UTF-8) to `path` through a temporary file of its own
    folder, flushed to disk and renamed over it: a reader (or a `kill -9`) sees the old
    file or the new one, never a part. A disk that refuses it raises WriteError and
    leaves the old file."""
    path = Path(path)
    data = payload.encode("utf-8") if isinstance(payload, str) else payload
    temporary = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise


def write_json(path: Path, value) -> None:
    atomic_write(path, json.dumps(value, indent=2, ensure_ascii=False) + "\n")
