"""The checkpoint an interrupted run resumes from: every variable of the model and its
optimizer and the early-stopping state, in one file written atomically; the folder a
run writes aside, and resuming (or starting) a run there."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np

from slotkeras import distributed
from slotkeras.file_writing import atomic_write, writing

# Settings that may change between an interrupted run and its resumption.
_RESUME_IGNORES = ("verbose", "resume", "tensorboard", "export", "epochs", "patience")


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
        with writing(self.folder):
            self.folder.mkdir(parents=True, exist_ok=True)
            for child in self.folder.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        atomic_write(self.run_path, json.dumps(run_key))

    def save(self, model, state: dict, weights: list, best_weights: list | None) -> None:
        """`weights`: the model's training weights, in `model.weights` order."""
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


def work_dir_for(config, strategy) -> Path:
    """The folder the run writes aside: `.NAME.partial` next to the model folder, and
    for another worker than the chief its own (even on a disk shared with the chief)."""
    output = Path(config.output)
    if distributed.is_chief(strategy):
        return output.parent / f".{output.name}.partial"
    return output.parent / f".{output.name}.partial-{distributed.task_name(strategy)}"


def _run_key(config) -> dict:
    values = config.to_dict()
    for key in _RESUME_IGNORES:
        values.pop(key, None)
    return values


def resume_or_start(checkpoint: Checkpoint, tagger, config, strategy, log):
    """The state and best weights of the interrupted run of these settings, restored
    into `tagger` (None, None: a new run, and the work folder is emptied for it)."""
    state, best_weights = None, None
    if config.resume and checkpoint.matches(_run_key(config)):
        with strategy.scope():  # optimizer variables are created under the strategy
            state, best_weights = checkpoint.restore(tagger)
    else:
        checkpoint.start(_run_key(config))
    if distributed.in_multi_worker_mode(strategy):
        with distributed.lost_worker_is_an_error(checkpoint.folder):
            state, best_weights = distributed.agree_with_chief(
                strategy, tagger, state, best_weights
            )
    if state is not None:
        if distributed.is_chief(strategy):
            log(f"Resuming from the checkpoint of epoch {state['epoch']} in {checkpoint.folder}")
        else:
            log(f"Resuming after epoch {state['epoch']}, in step with the chief")
    return state, best_weights
