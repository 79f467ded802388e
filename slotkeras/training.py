"""Training: data -> features -> model -> fit with validation slot F1 -> model folder.

The model folder is written aside (`.NAME.partial/`) and renamed into place only
when complete, so an existing `models/NAME` is never left half-written. The aside
folder also holds a checkpoint after every epoch (weights, optimizer state, early
stopping state): the same command run again after an interruption resumes there.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from slotkeras import evaluation, features, models
from slotkeras.config import ConfigError, TrainConfig
from slotkeras.optimizers import LazyAdam
from slotkeras.predictor import SlotFiller, export_saved_model, make_decoder
from slotkeras.splits import Splits, load_splits


class TrainingError(RuntimeError):
    """Training could not finish (for example a non-finite loss); the message says why
    and what was kept."""


# Settings that may change between an interrupted run and its resumption.
_RESUME_IGNORES = ("verbose", "resume", "tensorboard", "export", "epochs", "patience", "extra")


def cluster_spec_from_env() -> dict:
    """The `cluster` of the `TF_CONFIG` environment variable ({} when unset)."""
    text = os.environ.get("TF_CONFIG", "").strip()
    if not text:
        return {}
    try:
        tf_config = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"TF_CONFIG: not valid JSON ({error})") from None
    if not isinstance(tf_config, dict) or not isinstance(tf_config.get("cluster", {}), dict):
        raise ConfigError('TF_CONFIG: expected {"cluster": {...}, "task": {...}}')
    return tf_config.get("cluster", {})


def build_compiled_tagger(
    config: TrainConfig,
    num_tags: int,
    vocabulary_size: int,
    num_intents: int,
    steps_per_epoch: int = 1,
) -> keras.Model:
    """The tagger of a run, compiled with its losses and optimizer (call it under the
    strategy's scope). `steps_per_epoch`: the optimizer steps over which the learning
    rate falls by `config.learning_rate_decay`."""
    tagger = models.build_tagger(
        num_tags=num_tags,
        vocabulary_size=vocabulary_size,
        num_intents=num_intents,
        model=config.model,
        bidirectional=config.bidirectional,
        layers=config.layers,
        units=config.units,
        encoding=config.encoding,
        embedding_dim=config.embedding_dim,
        hash_buckets=config.hash_buckets,
        hash_dim=config.hash_dim,
        max_trigrams=config.max_trigrams,
        dropout=config.dropout,
        output=config.output_layer,
        slot_intent_feedback=config.slot_intent_feedback,
        seed=config.seed,
    )
    if config.output_layer == "crf":
        from slotkeras.layers.crf import CRFLoss
        from slotkeras.predictor import find_crf

        slot_loss = CRFLoss(find_crf(tagger))
    else:
        slot_loss = keras.losses.SparseCategoricalCrossentropy(ignore_class=features.LABEL_PAD)
    losses = {"slots": slot_loss}
    weights = {"slots": 1.0}
    if num_intents:
        losses["intent"] = keras.losses.SparseCategoricalCrossentropy()
        weights["intent"] = config.effective_intent_loss_weight
    optimizer_class = LazyAdam if config.optimizer == "lazy_adam" else keras.optimizers.Adam
    averaging = {}
    if config.weight_averaging > 0:
        averaging = {"use_ema": True, "ema_momentum": config.weight_averaging}
    learning_rate = config.learning_rate
    if config.learning_rate_decay < 1:
        learning_rate = keras.optimizers.schedules.ExponentialDecay(
            config.learning_rate, max(int(steps_per_epoch), 1), config.learning_rate_decay
        )
    tagger.compile(
        optimizer=optimizer_class(learning_rate, clipnorm=config.clipnorm, **averaging),
        loss=losses,
        loss_weights=weights,
        jit_compile=config.jit_compile,
    )
    return tagger


def progress_verbosity(verbose: int) -> int:
    """Keras verbosity: the progress bar (1) becomes one line per epoch (2) when the
    output is not a terminal, so logs hold epochs, not thousands of bar updates."""
    if verbose == 1 and not sys.stdout.isatty():
        return 2
    return verbose


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The tf.distribute strategy for `--strategy`.

    `mirrored` copies the model on every GPU of this machine (MirroredStrategy);
    `multi_worker` on every worker of the cluster described by the `TF_CONFIG`
    environment variable (MultiWorkerMirroredStrategy); `auto` picks
    `multi_worker` when TF_CONFIG names more than one task, `mirrored` with more than
    one GPU, and the default strategy otherwise.

    Call it before any other TensorFlow operation of the process: a multi-worker
    strategy must configure the collective ops before the TensorFlow runtime starts.
    This function itself only lists the physical devices, which does not start it.
    """
    gpus = tf.config.list_physical_devices("GPU")
    if name == "auto":
        cluster = cluster_spec_from_env()
        tasks = sum(len(cluster.get(job, [])) for job in ("chief", "worker"))
        if tasks > 1:
            name = "multi_worker"
        elif len(gpus) > 1:
            name = "mirrored"
        else:
            return tf.distribute.get_strategy()
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        cluster_spec_from_env()  # a malformed TF_CONFIG is a user error, not a traceback
        try:
            return tf.distribute.MultiWorkerMirroredStrategy()
        except RuntimeError as error:
            if "program startup" not in str(error) and "already configured" not in str(error):
                raise
            raise TrainingError(
                "the multi_worker strategy must be created before any other TensorFlow "
                "operation of the process (and only once): run training in a fresh process"
            ) from None
    raise ValueError(f"Received an invalid value for `strategy`, got {name!r}.")


def _in_multi_worker_mode(strategy: tf.distribute.Strategy) -> bool:
    return (
        isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        and strategy.extended._in_multi_worker_mode()
    )


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the model folder: the `chief` task when the cluster
    has one, else worker 0, and always a process that is not part of a cluster."""
    if not _in_multi_worker_mode(strategy):
        return True
    resolver = strategy.cluster_resolver
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return not has_chief and resolver.task_type == "worker" and resolver.task_id == 0


def task_name(strategy: tf.distribute.Strategy) -> str:
    """`worker-1`, `chief-0`...: this process's task in the cluster ("" outside one)."""
    if not _in_multi_worker_mode(strategy):
        return ""
    resolver = strategy.cluster_resolver
    return f"{resolver.task_type}-{resolver.task_id}"


def prepare_distributed_fit(model: keras.Model, dataset, strategy) -> None:
    """Works around two bugs of Keras 3's TensorFlow trainer (3.15) with
    MultiWorkerMirroredStrategy (keras-team/keras#20329, #20585), for this `model`
    instance only; under the default strategy it does nothing.

    1. `fit` builds the losses, metrics and optimizer from a first batch that it
       all-reduces across replicas: that fails on a dict of inputs, and could not work
       with batches of different lengths on different workers. They are built here
       from the dataset's element spec instead (no data, no collective op) and `fit`
       skips that step.
    2. `fit` averages each step's logs over the workers with a mean along axis 0,
       which fails on scalars. The step's logs get a leading axis of 1, so that the
       mean is over the workers' values (the progress bar then shows global figures).
       The epoch-end logs that callbacks and the history see are read from the
       metrics afterwards; their state is summed over all workers, so every worker
       gets the same numbers.
    """
    if strategy is tf.distribute.get_strategy() and not tf.distribute.has_strategy():
        return
    with strategy.scope():
        model._symbolic_build(data_batch=dataset.element_spec)
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
    if _in_multi_worker_mode(strategy):
        train_step = model.train_step

        def train_step_with_replica_axis(data):
            return tf.nest.map_structure(lambda v: tf.expand_dims(v, 0), train_step(data))

        model.train_step = train_step_with_replica_axis


def describe_devices(strategy: tf.distribute.Strategy) -> str:
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        names = []
        for gpu in gpus:
            details = tf.config.experimental.get_device_details(gpu)
            names.append(details.get("device_name", gpu.name))
        where = f"{len(gpus)} GPU(s): {', '.join(names)}"
    else:
        where = f"CPU ({os.cpu_count()} cores)"
    name = type(strategy).__name__
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        name = "MultiWorkerMirroredStrategy"  # not its class's name, CollectiveAllReduce...
    described = f"{where}; strategy {name}, {strategy.num_replicas_in_sync} replica(s)"
    if _in_multi_worker_mode(strategy):
        role = "chief: writes the model folder" if is_chief(strategy) else "writes no model"
        described += f"; task {task_name(strategy)} ({role})"
    return described


def weights_digest(model: keras.Model) -> str:
    """SHA-256 of the model's weights (dtype, shape and bytes of each array, in order):
    equal on every worker at the end of a multi-worker run."""
    digest = hashlib.sha256()
    for array in model.get_weights():
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def broadcast_from_chief(strategy: tf.distribute.Strategy, arrays: list) -> list:
    """The chief's copy of `arrays` on every worker (each worker passes arrays of the
    same shapes and dtypes; the others' values are ignored). Outside a multi-worker
    run, `arrays` unchanged. A collective operation: every worker must call it."""
    if not _in_multi_worker_mode(strategy) or not arrays:
        return arrays
    source_worker = is_chief(strategy)
    local_replicas = len(strategy.extended.worker_devices)

    def replica_fn(*values):
        ctx = tf.distribute.get_replica_context()
        # One replica (the chief's first) contributes its values, the others zeros:
        # their sum is an exact copy, whatever the values (NaN included).
        source = tf.logical_and(
            tf.constant(source_worker), tf.equal(ctx.replica_id_in_sync_group % local_replicas, 0)
        )
        return [
            ctx.all_reduce(tf.distribute.ReduceOp.SUM, tf.where(source, v, tf.zeros_like(v)))
            for v in values
        ]

    tensors = [tf.convert_to_tensor(np.asarray(a)) for a in arrays]
    results = strategy.run(tf.function(replica_fn), args=tuple(tensors))
    return [strategy.experimental_local_results(r)[0].numpy() for r in results]


@contextlib.contextmanager
def lost_worker_is_an_error(work_dir: Path | None):
    """In a multi-worker run (`work_dir` given), a worker that dies makes the collective
    ops of the others fail within seconds: one line instead of a traceback."""
    if work_dir is None:
        yield
        return
    try:
        yield
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError) as error:
        raise TrainingError(
            f"lost contact with another worker of the cluster ({type(error).__name__}); "
            f"checkpoints are kept in {work_dir}: run the same command on every worker "
            "again to resume"
        ) from None


def agree_with_chief(strategy, model: keras.Model, state: dict | None, work_dir: Path):
    """Makes every worker start (or resume) from the chief's state: the chief's epoch
    and early-stopping state, weights, optimizer state and best weights so far.

    Each worker restores its own checkpoint first; they normally agree already, since
    all of them save after every epoch. They may not when a worker was killed between
    two saves, or its machine (and work folder) was replaced: the chief's state then
    wins, so the workers run the same epochs, stop together and end with identical
    weights. Returns this worker's state (None: start from scratch). A collective
    operation: every worker must call it, and only in a multi-worker run."""
    with strategy.scope():
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
    best_file = work_dir / "best.weights.npz"
    mine = state or {}
    has_best = bool(state) and mine.get("best_epoch", -1) >= 0 and best_file.is_file()
    numbers = np.array(
        [
            1.0 if state else 0.0,
            mine.get("epoch", 0),
            mine.get("best", -1.0),
            mine.get("best_epoch", -1),
            mine.get("wait", 0),
            1.0 if mine.get("stopped") else 0.0,
            1.0 if has_best else 0.0,
        ],
        np.float64,
    )
    has_state, epoch, best, best_epoch, wait, stopped, chief_has_best = broadcast_from_chief(
        strategy, [numbers]
    )[0].tolist()
    variables = list(model.weights) + list(model.optimizer.variables if model.optimizer else [])
    values = broadcast_from_chief(strategy, [np.asarray(v) for v in variables])
    for variable, value in zip(variables, values, strict=True):
        variable.assign(value)
    if chief_has_best:
        if has_best:
            with np.load(best_file) as arrays:
                best_weights = [arrays[f"arr_{i}"] for i in range(len(arrays.files))]
        else:
            best_weights = [np.zeros_like(w) for w in model.get_weights()]
        best_weights = broadcast_from_chief(strategy, best_weights)
        save_weights_npz([np.asarray(w) for w in best_weights], best_file)
    if not has_state:
        return None
    agreed = {
        "epoch": int(epoch),
        "best": best,
        "best_epoch": int(best_epoch),
        "wait": int(wait),
        "stopped": bool(stopped),
        # Only the chief writes history.csv; a worker keeps the rows it has.
        "history": [r for r in mine.get("history", []) if r.get("epoch", 0) <= int(epoch)],
    }
    return agreed


def _atomic_write_bytes(path: Path, payload: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _atomic_write_text(path: Path, text: str) -> None:
    _atomic_write_bytes(path, text.encode("utf-8"))


class Checkpoint:
    """Weights, optimizer state and early-stopping state after each epoch, written
    atomically (a `kill -9` leaves either the old or the new checkpoint)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.path = folder / "checkpoint.npz"
        self.state_path = folder / "state.json"

    def exists(self) -> bool:
        return self.path.is_file()

    def save(self, model: keras.Model, state: dict, best_weights=None) -> None:
        """One file holds everything (weights, optimizer state, early-stopping state
        and the best weights so far), so a kill between two writes cannot pair the
        state of one epoch with the weights of another. `state.json` is a readable
        copy of the state, written after it."""
        arrays = {f"w{i}": np.asarray(w) for i, w in enumerate(model.get_weights())}
        optimizer = model.optimizer
        if optimizer is not None and optimizer.built:
            for i, v in enumerate(optimizer.variables):
                arrays[f"o{i}"] = np.asarray(v)
        for i, w in enumerate(best_weights or []):
            arrays[f"b{i}"] = np.asarray(w)
        arrays["state"] = np.array(json.dumps(state))
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        _atomic_write_bytes(self.path, buffer.getvalue())
        _atomic_write_text(self.state_path, json.dumps(state))

    def restore(self, model: keras.Model) -> dict:
        """Restores weights and optimizer state, rewrites `best.weights.npz` from the
        checkpoint, and returns the early-stopping state."""

        def numbered(arrays, prefix):
            keys = [k for k in arrays.files if k[:1] == prefix and k[1:].isdigit()]
            return [arrays[k] for k in sorted(keys, key=lambda k: int(k[1:]))]

        with np.load(self.path) as arrays:
            state = json.loads(str(arrays["state"]))
            model.set_weights(numbered(arrays, "w"))
            optimizer_values = numbered(arrays, "o")
            if optimizer_values:
                optimizer = model.optimizer
                if not optimizer.built:
                    optimizer.build(model.trainable_variables)
                for variable, value in zip(optimizer.variables, optimizer_values):
                    variable.assign(value)
            best = numbered(arrays, "b")
        if best:
            buffer = io.BytesIO()
            np.savez(buffer, *best)
            _atomic_write_bytes(self.folder / "best.weights.npz", buffer.getvalue())
        return state


@contextlib.contextmanager
def averaged_weights(model: keras.Model):
    """Inside the block the model holds the moving average of its trainable weights
    that its optimizer keeps (`use_ema`); the training weights come back after it.
    Without an average the block changes nothing."""
    optimizer = model.optimizer
    if optimizer is None or not optimizer.use_ema or not optimizer.built:
        yield
        return
    # Keras keeps the averages in step with `_trainable_variables` (its own
    # SwapEMAWeights callback reads the same two lists).
    pairs = list(zip(optimizer._trainable_variables, optimizer._model_variables_moving_average))
    training = [variable.numpy() for variable, _ in pairs]
    for variable, average in pairs:
        variable.assign(average)
    try:
        yield
    finally:
        for (variable, _), value in zip(pairs, training):
            variable.assign(value)


def save_weights_npz(weights: list, path: Path) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, *weights)
    _atomic_write_bytes(path, buffer.getvalue())


def load_weights_npz(model: keras.Model, path: Path) -> None:
    with np.load(path) as arrays:
        model.set_weights([arrays[f"arr_{i}"] for i in range(len(arrays.files))])


class ValidationF1(keras.callbacks.Callback):
    """Span-level slot F1 on the validation split after every epoch (`val_slot_f1`
    in the logs and the progress bar), early stopping on it with the best weights
    kept, a stop on a non-finite loss, and the resumable checkpoint."""

    def __init__(
        self,
        dataset,
        gold_tags,
        gold_intents,
        tag_names,
        num_intents,
        patience,
        work_dir: Path | None,
        checkpoint: Checkpoint | None,
        state: dict | None = None,
    ):
        super().__init__()
        self.dataset = dataset
        self.gold_tags = gold_tags
        self.gold_intents = gold_intents
        self.tag_names = tag_names
        self.num_intents = num_intents
        self.patience = patience
        self.work_dir = work_dir
        self.checkpoint = checkpoint
        state = state or {}
        self.best = state.get("best", -1.0)
        self.best_epoch = state.get("best_epoch", -1)
        self.wait = state.get("wait", 0)
        self.rows = state.get("history", [])
        self.best_weights = None
        self.failure = None
        self._decode = None

    def evaluate(self):
        if self._decode is None:
            # One trace serves every batch (without the signature, the last, shorter
            # batch would trace it a second time).
            self._decode = tf.function(
                make_decoder(self.model, self.num_intents),
                input_signature=[self.dataset.element_spec],
            )
        predicted, intents = [], []
        for inputs in self.dataset:
            tag_ids, intent_ids, _ = self._decode(inputs)
            lengths = tf.reduce_sum(tf.cast(inputs["word_ids"] > 0, tf.int32), axis=1).numpy()
            for row, length in zip(tag_ids.numpy(), lengths):
                predicted.append([self.tag_names[i] for i in row[:length]])
            intents.extend(intent_ids.numpy().tolist())
        f1 = evaluation.slot_f1(self.gold_tags, predicted)
        intent_acc = None
        if self.num_intents and self.gold_intents is not None:
            hits = sum(int(g == p) for g, p in zip(self.gold_intents, intents))
            intent_acc = 100.0 * hits / max(len(intents), 1)
        return f1, intent_acc

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        loss = logs.get("loss")
        if loss is not None and not math.isfinite(loss):
            self.failure = (
                f"training loss became {loss} in epoch {epoch + 1}; stopped and kept the "
                f"model of epoch {self.best_epoch + 1} (validation slot F1 {self.best:.2f})"
                if self.best_epoch >= 0
                else f"training loss became {loss} in epoch {epoch + 1}, before any good epoch"
            )
            self.model.stop_training = True
            return
        with averaged_weights(self.model):
            f1, intent_acc = self.evaluate()
            best_weights = self.model.get_weights() if f1 > self.best else None
        logs["val_slot_f1"] = f1
        if intent_acc is not None:
            logs["val_intent_accuracy"] = intent_acc
        row = {"epoch": epoch + 1}
        row.update({k: float(v) for k, v in logs.items()})
        self.rows.append(row)
        if f1 > self.best:
            self.best, self.best_epoch, self.wait = f1, epoch, 0
            self.best_weights = best_weights
            if self.work_dir is not None:
                save_weights_npz(best_weights, self.work_dir / "best.weights.npz")
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.model.stop_training = True
        if self.best >= 100.0:
            # No later epoch can be strictly better: waiting `patience` more epochs
            # would end with these same best weights.
            self.model.stop_training = True
        if self.checkpoint is not None:
            self.checkpoint.save(
                self.model,
                {
                    "epoch": epoch + 1,
                    "best": self.best,
                    "best_epoch": self.best_epoch,
                    "wait": self.wait,
                    "history": self.rows,
                    "stopped": bool(self.model.stop_training),
                },
                best_weights=self._best_weights_for_checkpoint(),
            )

    def _best_weights_for_checkpoint(self):
        if self.best_weights is not None:
            return self.best_weights
        best_file = self.work_dir / "best.weights.npz" if self.work_dir is not None else None
        if best_file is not None and best_file.is_file():
            with np.load(best_file) as arrays:
                return [arrays[f"arr_{i}"] for i in range(len(arrays.files))]
        return None

    def restore_best(self):
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)
        elif self.work_dir is not None and (self.work_dir / "best.weights.npz").is_file():
            load_weights_npz(self.model, self.work_dir / "best.weights.npz")


def _dataset_arrays(featurizer, utterances, tag_vocab, intent_vocab):
    token_lists = [u.tokens for u in utterances]
    word_ids, trigram_ids = features.featurize(featurizer, token_lists)
    slot_ids = [tag_vocab.encode(u.tags, unknown=0) for u in utterances]
    intent_ids = None
    if intent_vocab is not None:
        intent_ids = [intent_vocab.index.get(u.intent, 0) for u in utterances]
    return word_ids, trigram_ids, slot_ids, intent_ids


def _word_dropout(rate: float, seed: int):
    def apply(inputs, targets):
        word_ids = inputs["word_ids"]
        drop = tf.random.uniform(tf.shape(word_ids), seed=seed) < rate
        word_ids = tf.where(
            drop & (word_ids > features.OTHER_INDEX), features.OTHER_INDEX, word_ids
        )
        return {**inputs, "word_ids": word_ids}, targets

    return apply


def write_history_csv(path: Path, rows: list[dict]) -> None:
    keys = []
    for row in rows:
        keys.extend(k for k in row if k not in keys)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    _atomic_write_text(path, out.getvalue())


def _run_key(config: TrainConfig) -> dict:
    values = config.to_dict()
    for key in _RESUME_IGNORES:
        values.pop(key, None)
    return values


def train(config: TrainConfig, log=print, splits: Splits | None = None) -> dict:
    """Trains a tagger as configured and writes the model folder. Returns the final
    validation metrics (also in `metrics.json`), with the held-out report under
    `test` when a held-out set is known. `splits`: the data, when already read with
    `slotkeras.splits.load_splits(config)`; read here otherwise.

    In a multi-worker run (docs/distributed.md) every worker calls it with the same
    config; only the chief writes the model folder, the others return their metrics
    with `"chief": False` and leave nothing behind."""
    config.validate()
    started = time.time()
    # The strategy first: a multi-worker strategy must exist before any other TF op.
    strategy = make_strategy(config.strategy)
    chief = is_chief(strategy)
    keras.utils.set_random_seed(config.seed)
    if config.jit_compile:
        # Keras compiles nothing with XLA while TF's op determinism is on (not every op
        # has a deterministic XLA kernel): an XLA run is seeded but not bit-for-bit
        # reproducible. TF has no public switch back.
        from tensorflow.python.framework import config as tf_framework_config

        tf_framework_config.disable_op_determinism()
    else:
        tf.config.experimental.enable_op_determinism()

    if splits is None:
        splits = load_splits(config)
    log(f"Training on {describe_devices(strategy)}")

    output = Path(config.output)
    work_dir = output.parent / f".{output.name}.partial"
    if not chief:  # its own scratch folder, even when it shares a disk with the chief
        work_dir = output.parent / f".{output.name}.partial-{task_name(strategy)}"
    work_dir.mkdir(parents=True, exist_ok=True)
    run_file = work_dir / "run.json"
    checkpoint = Checkpoint(work_dir)
    resumable = (
        config.resume
        and checkpoint.exists()
        and run_file.is_file()
        and json.loads(run_file.read_text(encoding="utf-8")) == _run_key(config)
    )
    if not resumable:
        for child in work_dir.iterdir():
            shutil.rmtree(child) if child.is_dir() else child.unlink()
        _atomic_write_text(run_file, json.dumps(_run_key(config)))

    # --- features and labels, adapted on the training split only ---
    vocabulary = features.build_vocabulary(
        (u.tokens for u in splits.train),
        lowercase=config.lowercase,
        min_count=config.min_count,
        max_size=config.max_vocab,
    )
    featurizer = features.TokenFeaturizer(
        vocabulary,
        lowercase=config.lowercase,
        num_buckets=config.hash_buckets,
        max_trigrams=config.max_trigrams,
        name="token_featurizer",
    )
    tag_vocab = features.LabelVocabulary.from_tags(u.tags for u in splits.train)
    has_intents = config.joint_intent and all(u.intent is not None for u in splits.train)
    intent_vocab = (
        features.LabelVocabulary.from_labels(u.intent for u in splits.train)
        if has_intents
        else None
    )
    num_intents = len(intent_vocab) if intent_vocab else 0
    log(
        f"{len(splits.train)} training and {len(splits.valid)} validation utterances; "
        f"{len(vocabulary)} words (+ Other), {len(tag_vocab)} tags, {num_intents} intents"
    )

    train_arrays = _dataset_arrays(featurizer, splits.train, tag_vocab, intent_vocab)
    global_batch = config.batch_size * strategy.num_replicas_in_sync
    train_ds = features.make_dataset(
        *train_arrays,
        batch_size=global_batch,
        shuffle=True,
        seed=config.seed,
        max_trigrams=config.max_trigrams,
    )
    if config.word_dropout > 0 and config.encoding != "hash":
        train_ds = train_ds.map(_word_dropout(config.word_dropout, config.seed))
    # The batches of an epoch (known: `make_dataset` batches by length reproducibly).
    steps_per_epoch = int(train_ds.cardinality())
    if steps_per_epoch < 1:
        steps_per_epoch = math.ceil(len(splits.train) / global_batch)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    train_ds = train_ds.with_options(options)
    valid_order = np.argsort([len(u.tokens) for u in splits.valid], kind="stable")
    valid_sorted = [splits.valid[i] for i in valid_order]
    word_ids, trigram_ids, _, _ = _dataset_arrays(featurizer, valid_sorted, tag_vocab, intent_vocab)
    valid_ds = features.make_dataset(
        word_ids, trigram_ids, batch_size=256, max_trigrams=config.max_trigrams
    )

    with strategy.scope():
        tagger = build_compiled_tagger(
            config,
            len(tag_vocab),
            featurizer.vocabulary_size,
            num_intents,
            steps_per_epoch=steps_per_epoch,
        )
    if config.jit_compile:
        log(
            "XLA compilation: "
            + ("on (seeded, not bit-for-bit reproducible)" if tagger.jit_compile else "off")
        )

    state = None
    initial_epoch = 0
    if resumable:
        with strategy.scope():  # optimizer variables are created under the strategy
            state = checkpoint.restore(tagger)
    if _in_multi_worker_mode(strategy):
        with lost_worker_is_an_error(work_dir):
            state = agree_with_chief(strategy, tagger, state, work_dir)
    if state is not None:
        initial_epoch = state["epoch"]
        if chief:
            log(f"Resuming from the checkpoint of epoch {initial_epoch} in {work_dir}")
        else:
            log(f"Resuming after epoch {initial_epoch}, in step with the chief")

    f1_callback = ValidationF1(
        valid_ds,
        [list(u.tags) for u in valid_sorted],
        [intent_vocab.index.get(u.intent, -1) for u in valid_sorted] if intent_vocab else None,
        tag_vocab.labels,
        num_intents,
        config.patience,
        work_dir,
        checkpoint,
        state,
    )
    callbacks = [f1_callback]
    if config.tensorboard and chief:
        callbacks.append(keras.callbacks.TensorBoard(config.tensorboard))
    already_done = bool(state and state.get("stopped")) or initial_epoch >= config.epochs
    if not already_done:
        prepare_distributed_fit(tagger, train_ds, strategy)
        with lost_worker_is_an_error(work_dir if _in_multi_worker_mode(strategy) else None):
            tagger.fit(
                train_ds,
                epochs=config.epochs,
                initial_epoch=initial_epoch,
                callbacks=callbacks,
                verbose=progress_verbosity(config.verbose),
                shuffle=False,  # the dataset shuffles itself, reproducibly
            )
    if f1_callback.failure is not None:
        f1_callback.restore_best()
        if f1_callback.best_epoch < 0:  # no good epoch, so no checkpoint worth resuming
            shutil.rmtree(work_dir, ignore_errors=True)
            raise TrainingError(f1_callback.failure + "; nothing was written")
        log("warning: " + f1_callback.failure)
    f1_callback.restore_best()
    train_seconds = time.time() - started
    if _in_multi_worker_mode(strategy):
        log(f"Task {task_name(strategy)}: final weights sha256 {weights_digest(tagger)}")

    # --- the model folder, written aside and renamed into place ---
    filler = SlotFiller(
        models.build_end_to_end(featurizer, tagger),
        tag_vocab.labels,
        intent_vocab.labels if intent_vocab else [],
        config.to_dict(),
    )
    valid_report = _report(filler, splits.valid, tag_vocab.labels)
    metrics = {
        "validation": valid_report,
        "best_epoch": f1_callback.best_epoch + 1,
        "epochs_trained": len(f1_callback.rows),
        "train_seconds": round(train_seconds, 2),
        "parameters": int(tagger.count_params()),
        "train_utterances": len(splits.train),
        "valid_utterances": len(splits.valid),
        "stopped_early": f1_callback.wait >= config.patience,
        "failure": f1_callback.failure,
    }
    if chief:
        final = work_dir / "model"
        if final.exists():
            shutil.rmtree(final)
        final.mkdir()
        filler.model.save(final / "model.keras")
        (final / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
        labels = {"tags": tag_vocab.labels, "intents": filler.intents}
        (final / "labels.json").write_text(json.dumps(labels, indent=2, ensure_ascii=False) + "\n")
        write_history_csv(final / "history.csv", f1_callback.rows)
        (final / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        if config.export:
            export_saved_model(filler, final / "saved_model")
        replace_folder(final, output)
        shutil.rmtree(work_dir, ignore_errors=True)
        log(
            f"Saved {output} (best epoch {metrics['best_epoch']}, validation slot F1 "
            f"{valid_report['slot_f1']:.2f}, {train_seconds:.1f} s)"
        )
    else:  # another worker: its scratch folder goes, the chief reports
        shutil.rmtree(work_dir, ignore_errors=True)
        log(f"Task {task_name(strategy)} done; the chief writes {output}")
        return {**metrics, "chief": False}
    if splits.test is not None:
        metrics["test"] = _report(filler, splits.test, tag_vocab.labels)
        metrics["test_source"] = splits.test_source
    return metrics


def _report(filler: SlotFiller, utterances, known_tags) -> dict:
    predictions = filler.predict([u.tokens for u in utterances])
    return evaluation.report(
        [u.tags for u in utterances],
        [p.tags for p in predictions],
        [u.intent for u in utterances] if filler.intents else None,
        [p.intent for p in predictions] if filler.intents else None,
        known_tags=known_tags,
    )


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
