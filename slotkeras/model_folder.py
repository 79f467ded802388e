"""A trained model folder: its small files read and checked without TensorFlow (a command
given a missing, broken or tampered folder says so at once, before loading the model),
and the folder a training run writes (its files, its history, its manifest, the rename
into place). The SavedModel inside it is written by `slotkeras.saved_model_export`.

`manifest.json`, written last, lists every other file with its size and SHA-256 and the
library versions that wrote it; a folder that does not match it is refused. Its three
files are checked against one another too: the tags of `labels.json` against those the
model in `model.keras` predicts, and `config.json` as `train.py` checks a config."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import sys
import zipfile
from pathlib import Path

from slotkeras.config import ConfigError, TrainConfig
from slotkeras.file_writing import atomic_write, write_json, writing

# The files a model folder needs to be loaded (saved_model/ is for serving only).
NEEDED = ("model.keras", "labels.json", "config.json")
MANIFEST = "manifest.json"
# Folders whose manifest was checked (files' sizes, times and inodes), and folders
# without one whose note was printed: a folder is hashed once a process, not per load.
_checked: dict[Path, tuple] = {}
_noted: set[Path] = set()


class ModelFolderError(ValueError):
    """A model folder that cannot be used: names the folder and what is wrong."""


def read_model_folder(folder: str | os.PathLike) -> tuple[list[str], list[str], dict]:
    """Checks that `folder` holds a model and returns its tag names, intent names and
    run config (from `labels.json` and `config.json`); raises ModelFolderError.

    Checked: the files it needs, no link out of the folder, every file against
    `manifest.json` (a folder written before the manifest gets a one-line note on
    stderr instead), the config's settings, and the tags against `model.keras`."""
    folder = Path(folder)
    if not folder.exists():
        raise ModelFolderError(f"{folder}: no such model folder")
    if not folder.is_dir():
        raise ModelFolderError(f"{folder}: is a file, expected a model folder")
    _refuse_links_out(folder)
    missing = [name for name in NEEDED if not (folder / name).is_file()]
    if missing:
        raise ModelFolderError(
            f"{folder}: not a complete model folder (missing {', '.join(missing)})"
        )
    has_manifest = (folder / MANIFEST).is_file()
    if has_manifest:
        check_manifest(folder)
    values = {name: _json_object(folder / name) for name in ("labels.json", "config.json")}
    labels = values["labels.json"]
    tags, intents = labels.get("tags"), labels.get("intents", [])
    for key, names in (("tags", tags), ("intents", intents)):
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ModelFolderError(
                f"{folder / 'labels.json'}: expected '{key}' to be a list of strings"
            )
    if not tags:
        raise ModelFolderError(f"{folder / 'labels.json'}: no tags")
    _check_settings(folder / "config.json", values["config.json"])
    _check_labels_against_model(folder, tags, intents)
    if not has_manifest and folder.resolve() not in _noted:
        _noted.add(folder.resolve())
        print(
            f"note: {folder} has no {MANIFEST} (written before slotkeras kept one): "
            "its files are loaded unchecked",
            file=sys.stderr,
        )
    return tags, intents, values["config.json"]


def _json_object(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ModelFolderError(f"{path}: not a readable JSON file ({error})") from None
    if not isinstance(value, dict):
        raise ModelFolderError(f"{path}: expected a JSON object")
    return value


def _refuse_links_out(folder: Path) -> None:
    """A link inside the folder must stay inside it (a model folder copied from
    elsewhere could otherwise read, or serve, any file of the machine)."""
    root = folder.resolve()
    for parent, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(parent, name)
            if path.is_symlink():
                target = path.resolve()
                if target != root and root not in target.parents:
                    raise ModelFolderError(
                        f"{path}: a link to {target}, outside the model folder; refused"
                    )


def _check_settings(path: Path, settings: dict) -> None:
    """config.json's settings, checked as `train.py --config` checks them."""
    try:
        config = TrainConfig.from_dict(settings, source=str(path))
    except (ConfigError, TypeError) as error:
        raise ModelFolderError(str(error)) from None
    try:
        config.validate()
    except (ConfigError, TypeError) as error:
        raise ModelFolderError(f"{path}: {error}") from None


def _check_labels_against_model(folder: Path, tags: list, intents: list) -> None:
    """The tags of labels.json against the model's (from the Keras archive's own
    config, no TensorFlow needed): the CRF's tag names, or the softmax's width."""
    path = folder / "model.keras"
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        raise ModelFolderError(
            f"{path}: cannot be loaded: damaged, not a Keras model archive ({error})"
        ) from None
    heads = {layer["config"]["name"]: layer for layer in _layers(config)}
    for name, labels in (("slots", tags), ("intent", intents)):
        head = heads.get(name)
        if head is None:
            continue
        settings = head["config"]
        width = settings.get("num_tags", settings.get("units"))
        names = settings.get("tag_names") if name == "slots" else None
        what = "tags" if name == "slots" else "intents"
        if isinstance(width, int) and width != len(labels):
            raise ModelFolderError(
                f"{folder / 'labels.json'}: {len(labels)} {what} but model.keras predicts "
                f"{width}: the files come from different models"
            )
        if names is not None and list(names) != list(labels):
            raise ModelFolderError(
                f"{folder / 'labels.json'}: its tags are not those model.keras was trained "
                "on: the files come from different models, or labels.json was edited"
            )


def _layers(value):
    """Every layer config (a dict with `class_name` and a named `config`) nested in a
    Keras model config."""
    if isinstance(value, dict):
        settings = value.get("config")
        if "class_name" in value and isinstance(settings, dict) and "name" in settings:
            yield value
        for item in value.values():
            yield from _layers(item)
    elif isinstance(value, list):
        for item in value:
            yield from _layers(item)


def _files(folder: Path) -> list[str]:
    """The folder's files but the manifest, as sorted relative POSIX paths."""
    return sorted(
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_file() and path.name != MANIFEST
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(folder: Path) -> None:
    """Writes `manifest.json`: every file of the folder with its size and SHA-256, and
    the slotkeras, TensorFlow and Keras versions. Written last, so that a folder with
    a manifest is complete."""
    import keras
    import tensorflow as tf

    from slotkeras import __version__

    files = [
        {"path": name, "size": (folder / name).stat().st_size, "sha256": _sha256(folder / name)}
        for name in _files(folder)
    ]
    versions = {"slotkeras": __version__, "tensorflow": tf.__version__, "keras": keras.__version__}
    write_json(folder / MANIFEST, {"versions": versions, "files": files})


def check_manifest(folder: Path) -> None:
    """Every file `manifest.json` lists has its size and SHA-256; raises ModelFolderError
    naming the first that does not."""
    manifest = _json_object(folder / MANIFEST)
    entries = manifest.get("files")
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ModelFolderError(f"{folder / MANIFEST}: expected a list of 'files'")
    stamp = []
    for entry in entries:
        name = entry.get("path")
        path = folder / str(name)
        if not isinstance(name, str) or Path(name).is_absolute() or ".." in Path(name).parts:
            raise ModelFolderError(f"{folder / MANIFEST}: lists {name!r}, not a file inside it")
        if not path.is_file():
            raise ModelFolderError(f"{path}: listed in the manifest but missing")
        status = path.stat()
        stamp.append((name, status.st_size, status.st_mtime_ns, status.st_ino))
    stamp = (_sha256(folder / MANIFEST), tuple(stamp))
    if _checked.get(folder.resolve()) == stamp:
        return  # checked by this process already, and no file changed since
    for entry in entries:
        path = folder / entry["path"]
        if path.stat().st_size != entry.get("size") or _sha256(path) != entry.get("sha256"):
            raise ModelFolderError(f"{path} does not match the manifest: damaged or replaced")
    _checked[folder.resolve()] = stamp


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
    renames; the old folder is deleted only after the new one is in place, and put back
    if the new one cannot be (WriteError)."""
    old = target.parent / f".{target.name}.old"
    with writing(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        if old.exists():
            shutil.rmtree(old)
        if target.exists():
            os.replace(target, old)
        try:
            os.replace(new, target)
        except OSError:
            if old.exists() and not target.exists():
                os.replace(old, target)
            raise
    shutil.rmtree(old, ignore_errors=True)


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
    written next by its caller, then the manifest). `tokenizer_config`: the raw-text
    tokenizer's choices, kept in config.json under "tokenizer" next to the settings. A
    disk that refuses a file raises WriteError naming it."""
    with writing(folder):
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
    with writing(folder / "model.keras"):
        filler.model.save(folder / "model.keras")
    settings = dict(config)
    if tokenizer_config is not None:
        settings["tokenizer"] = tokenizer_config
    write_json(folder / "config.json", settings)
    write_json(folder / "labels.json", {"tags": list(filler.model_tags), "intents": filler.intents})
    atomic_write(folder / "history.csv", history_csv(history))
    write_json(folder / "metrics.json", metrics)
