"""Writing files so that a reader, or a `kill -9`, sees the old file or the new one,
never a part."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path


def atomic_write(path: str | os.PathLike, payload: bytes | str) -> None:
    """Writes `payload` (text as UTF-8) to `path` through a temporary file of its own
    folder, flushed to disk and renamed over it: a reader (or a `kill -9`) sees the old
    file or the new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = payload.encode("utf-8") if isinstance(payload, str) else payload
    temporary = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
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
