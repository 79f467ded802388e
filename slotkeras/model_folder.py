"""A trained model folder: its small files read and checked without TensorFlow (a command
given a missing or broken folder says so at once, before loading the model), and
everything a training run writes: the folder itself, its history, the one atomic-write
helper, and the checkpoint an interrupted run resumes from."""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
import shutil
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


# --- writing: one atomic write, the history, the folder, the checkpoint ---------------


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
    export: bool = True,
    tokenizer_config: dict | None = None,
) -> None:
    """Writes a complete model folder at `folder` (replaced if it exists): the files
    that `read_model_folder` checks, the history, the metrics and, with `export`, the
    SavedModel. `tokenizer_config`: the raw-text tokenizer's choices, kept in
    config.json under "tokenizer" next to the settings."""
    from slotkeras.predictor import export_saved_model

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
    if export:
        export_saved_model(filler, folder / "saved_model")


class Checkpoint:
    """The state of a run after its last completed epoch, in one file written
    atomically (a `kill -9` leaves the old checkpoint or the new one): the training
    weights, the other model variables (the dropout layers' random-number states), the
    optimizer's variables (its step, moments and weight averages), the best weights so
    far and the early-stopping state and history. `state.json` is a readable copy of
    the state, written after the checkpoint (a kill between the two leaves it an epoch
    behind; the checkpoint's own state is what a resumed run reads); `run.json` holds
    the settings the checkpoint belongs to."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.path = self.folder / "checkpoint.npz"
        self.state_path = self.folder / "state.json"
        self.run_path = self.folder / "run.json"

    def matches(self, run_key: dict) -> bool:
        """Whether there is a checkpoint of the run `run_key` to resume."""
        if not (self.path.is_file() and self.run_path.is_file()):
            return False
        try:
            return json.loads(self.run_path.read_text(encoding="utf-8")) == run_key
        except ValueError:
            return False

    def start(self, run_key: dict) -> None:
        """Empties the folder for a new run of `run_key`."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for child in self.folder.iterdir():
            shutil.rmtree(child) if child.is_dir() else child.unlink()
        atomic_write(self.run_path, json.dumps(run_key))

    def save(self, model, state: dict, weights: list, best_weights: list | None) -> None:
        """`weights`: the model's training weights, in `model.weights` order."""
        import numpy as np

        arrays = {f"w{i}": np.asarray(w) for i, w in enumerate(weights)}
        arrays.update({f"r{i}": np.asarray(v) for i, v in enumerate(_other_variables(model))})
        if model.optimizer is not None and model.optimizer.built:
            arrays.update({f"o{i}": np.asarray(v) for i, v in enumerate(model.optimizer.variables)})
        arrays.update({f"b{i}": np.asarray(w) for i, w in enumerate(best_weights or [])})
        arrays["state"] = np.array(json.dumps(state))
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        atomic_write(self.path, buffer.getvalue())
        atomic_write(self.state_path, json.dumps(state))

    def restore(self, model) -> tuple[dict, list | None]:
        """Puts the checkpoint's variables into `model` and its optimizer (built here if
        needed; call it under the strategy's scope) and returns the state and the best
        weights (None if no epoch was good)."""
        import numpy as np

        with np.load(self.path) as arrays:
            state = json.loads(str(arrays["state"]))
            model.set_weights(_numbered(arrays, "w"))
            for variable, value in zip(_other_variables(model), _numbered(arrays, "r")):
                variable.assign(value)
            optimizer_values = _numbered(arrays, "o")
            if optimizer_values:
                if not model.optimizer.built:
                    model.optimizer.build(model.trainable_variables)
                for variable, value in zip(model.optimizer.variables, optimizer_values):
                    variable.assign(value)
            best = _numbered(arrays, "b")
        return state, best or None


def _numbered(arrays, prefix: str) -> list:
    keys = [k for k in arrays.files if k[:1] == prefix and k[1:].isdigit()]
    return [arrays[k] for k in sorted(keys, key=lambda k: int(k[1:]))]


def _other_variables(model) -> list:
    """The model's variables that are not weights: the random-number states of its
    dropout layers, which `get_weights` leaves out but a resumed run needs."""
    weights = {id(w) for w in model.weights}
    return [v for v in model.variables if id(v) not in weights]
