"""A trained model folder: its small files read and checked without TensorFlow (a command
given a missing or broken folder says so at once, before loading the model), and the
folder a training run writes (its files, its history, the rename into place). The
SavedModel inside it is written by `slotkeras.saved_model_export`."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from pathlib import Path

from slotkeras.file_writing import atomic_write, write_json

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


def history_csv(rows: list[dict]) -> str:
    """The training curve as CSV: one row per epoch, the columns of every row."""
    keys = []
    for row in rows:
        keys.extend(k for k in row if k not in keys)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def replace_folder(new: Path, target: Path) -> None:
    """Moves the complete folder `new` to `target`, replacing what was there with two
    renames; the old folder is deleted only after the new one is in place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    old = target.parent / f".{target.name}.old"
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        os.replace(target, old)
    os.replace(new, target)
    if old.exists():
        shutil.rmtree(old)


def write_model_folder(
    folder: Path,
    filler,
    config: dict,
    history: list[dict],
    metrics: dict,
    tokenizer_config: dict | None = None,
) -> None:
    """Writes a complete model folder at `folder` (replaced if it exists): the files
    that `read_model_folder` checks, the history and the metrics (the SavedModel is
    written next by its caller). `tokenizer_config`: the raw-text tokenizer's choices, kept in
    config.json under "tokenizer" next to the settings."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    filler.model.save(folder / "model.keras")
    settings = dict(config)
    if tokenizer_config is not None:
        settings["tokenizer"] = tokenizer_config
    write_json(folder / "config.json", settings)
    write_json(folder / "labels.json", {"tags": list(filler.model_tags), "intents": filler.intents})
    atomic_write(folder / "history.csv", history_csv(history))
    write_json(folder / "metrics.json", metrics)
