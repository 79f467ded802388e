"""A trained model folder's small files, read and checked without TensorFlow: a command
given a missing or broken folder says so at once, before loading the model."""

from __future__ import annotations

import json
import os
from pathlib import Path

# The files a model folder needs to be loaded (saved_model/ is for serving only).
NEEDED = ("model.keras", "labels.json", "config.json")


class ModelFolderError(ValueError):
    """A model folder that cannot be used: names the folder and what is wrong."""


def read_model_folder(folder: str | os.PathLike) -> tuple[list[str], list[str], dict]:
    """Checks that `folder` holds a model and returns its tag names, intent names and
    run config (from `labels.json` and `config.json`); raises ModelFolderError."""
    folder = Path(folder)
    if not folder.exists():
        raise ModelFolderError(f"{folder}: no such model folder")
    if not folder.is_dir():
        raise ModelFolderError(f"{folder}: is a file, expected a model folder")
    missing = [name for name in NEEDED if not (folder / name).is_file()]
    if missing:
        raise ModelFolderError(
            f"{folder}: not a complete model folder (missing {', '.join(missing)})"
        )
    values = {}
    for name in ("labels.json", "config.json"):
        try:
            value = json.loads((folder / name).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ModelFolderError(f"{folder / name}: not a readable JSON file ({error})") from None
        if not isinstance(value, dict):
            raise ModelFolderError(f"{folder / name}: expected a JSON object")
        values[name] = value
    labels = values["labels.json"]
    tags, intents = labels.get("tags"), labels.get("intents", [])
    for key, names in (("tags", tags), ("intents", intents)):
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ModelFolderError(
                f"{folder / 'labels.json'}: expected '{key}' to be a list of strings"
            )
    if not tags:
        raise ModelFolderError(f"{folder / 'labels.json'}: no tags")
    return tags, intents, values["config.json"]
