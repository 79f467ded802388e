"""Distributed training: the tf.distribute strategy, which process is the chief, and
keeping the workers of a multi-worker run in step (docs/distributed.md), with the
workarounds Keras 3 needs for it."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from slotkeras.config import ConfigError


class TrainingError(RuntimeError):
    """Training could not finish (for example a non-finite loss, or a lost worker); the
    message says why and what was kept."""


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


def is_default(strategy: tf.distribute.Strategy) -> bool:
    """Whether `strategy` is TensorFlow's default one (one device, no distribution)."""
    return strategy is tf.distribute.get_strategy() and not tf.distribute.has_strategy()


def in_multi_worker_mode(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process is one task of a cluster of several (TF_CONFIG)."""
    # tf.distribute has no public test for "a cluster of more than one task"; Keras's
    # own trainer and callbacks call this same method.
    return (
        isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        and strategy.extended._in_multi_worker_mode()
    )


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the model folder: the `chief` task when the cluster
    has one, else worker 0, and always a process that is not part of a cluster."""
    if not in_multi_worker_mode(strategy):
        return True
    resolver = strategy.cluster_resolver
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return not has_chief and resolver.task_type == "worker" and resolver.task_id == 0


def task_name(strategy: tf.distribute.Strategy) -> str:
    """`worker-1`, `chief-0`...: this process's task in the cluster ("" outside one)."""
    if not in_multi_worker_mode(strategy):
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
    if is_default(strategy):
        return
    with strategy.scope():
        model._symbolic_build(data_batch=dataset.element_spec)
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
    if in_multi_worker_mode(strategy):
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
    if in_multi_worker_mode(strategy):
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
    if not in_multi_worker_mode(strategy) or not arrays:
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


def agree_with_chief(strategy, model: keras.Model, state: dict | None, best_weights):
    """Makes every worker start (or resume) from the chief's state: the chief's epoch
    and early-stopping state, variables (weights and random-number states), optimizer
    state and best weights so far.

    Each worker restores its own checkpoint first; they normally agree already, since
    all of them save after every epoch. They may not when a worker was killed between
    two saves, or its machine (and work folder) was replaced: the chief's state then
    wins, so the workers run the same epochs, stop together and end with identical
    weights. Returns this worker's state (None: start from scratch) and best weights.
    A collective operation: every worker must call it, and only in a multi-worker run."""
    with strategy.scope():
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
    mine = state or {}
    has_best = bool(state) and mine.get("best") is not None and best_weights is not None
    numbers = np.array(
        [
            1.0 if state else 0.0,
            mine.get("epoch", 0),
            mine.get("best") if has_best else -1.0,
            mine.get("best_epoch", 0),
            mine.get("wait", 0),
            1.0 if mine.get("stopped") else 0.0,
            1.0 if has_best else 0.0,
        ],
        np.float64,
    )
    has_state, epoch, best, best_epoch, wait, stopped, chief_has_best = broadcast_from_chief(
        strategy, [numbers]
    )[0].tolist()
    variables = list(model.variables) + list(model.optimizer.variables if model.optimizer else [])
    values = broadcast_from_chief(strategy, [np.asarray(v) for v in variables])
    for variable, value in zip(variables, values, strict=True):
        variable.assign(value)
    if chief_has_best:
        if not has_best:
            best_weights = [np.zeros_like(w) for w in model.get_weights()]
        best_weights = broadcast_from_chief(strategy, [np.asarray(w) for w in best_weights])
    else:
        best_weights = None
    if not has_state:
        return None, None
    agreed = {
        "epoch": int(epoch),
        "best": best if chief_has_best else None,
        "best_epoch": int(best_epoch),
        "wait": int(wait),
        "stopped": bool(stopped),
        # Only the chief writes history.csv; a worker keeps the rows it has.
        "history": [r for r in mine.get("history", []) if r.get("epoch", 0) <= int(epoch)],
    }
    return agreed, best_weights
