"""Training: config -> data -> features -> model -> fit -> model folder -> report.

The model folder is written aside (`.NAME.partial/`) and renamed into place only
when complete, so an existing `models/NAME` is never left half-written. The aside
folder also holds a checkpoint after every epoch (`slotkeras.checkpoint.Checkpoint`):
the same command run again after an interruption resumes there, and ends as the
uninterrupted run would have.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
from pathlib import Path

import keras
import tensorflow as tf

from slotkeras import data_size, distributed, evaluation, folder_lock, models
from slotkeras.callbacks import AveragedWeights, EarlyStoppingOnSlotF1, EpochCheckpoint, SlotF1
from slotkeras.checkpoint import Checkpoint, resume_or_start, work_dir_for
from slotkeras.compiled_tagger import compiled_tagger_for
from slotkeras.config import TrainConfig
from slotkeras.distributed import TrainingError  # noqa: F401  (the command line's error)
from slotkeras.model_folder import replace_folder, write_manifest, write_model_folder
from slotkeras.saved_model_export import export_saved_model
from slotkeras.slot_filler import SlotFiller
from slotkeras.splits import Splits, load_splits
from slotkeras.tag_schemes import output_tag
from slotkeras.tokenizer import Tokenizer
from slotkeras.training_inputs import TrainingInputs, lexicon_words, training_inputs

# TF's global seed for --seed 0 (see `seed_everything`): the largest TF keeps as it is
# (it takes seeds modulo 2**31 - 1).
_SEED_ZERO = 2**31 - 2


def progress_verbosity(verbose: int) -> int:
    """Keras verbosity: the progress bar (1) becomes one line per epoch (2) when the
    output is not a terminal, so logs hold epochs, not thousands of bar updates."""
    if verbose == 1 and not sys.stdout.isatty():
        return 2
    return verbose


def seed_everything(config: TrainConfig) -> None:
    """Seeds Python, NumPy, TensorFlow and Keras, and makes TF's ops deterministic:
    the same config gives the same weights, to the bit (but with XLA)."""
    keras.utils.set_random_seed(config.seed)
    if config.seed == 0:
        # TF reads a global seed of 0 with a tensor op seed (the epoch's shuffle) as a
        # Python comparison it cannot answer in a graph; the shuffles of seed 0 are
        # seeded from `_SEED_ZERO` instead (every other seed is TF's global seed as is).
        tf.random.set_seed(_SEED_ZERO)
    if config.jit_compile:
        # Keras compiles nothing with XLA while TF's op determinism is on (not every op
        # has a deterministic XLA kernel): an XLA run is seeded but not bit-for-bit
        # reproducible. TF has no public switch back.
        from tensorflow.python.framework import config as tf_framework_config

        tf_framework_config.disable_op_determinism()
    else:
        tf.config.experimental.enable_op_determinism()


def train(config: TrainConfig, log=print, splits: Splits | None = None) -> dict:
    """Trains a tagger as configured and writes the model folder. Returns the final
    validation metrics (also in `metrics.json`), with the held-out report under
    `test` when a held-out set is known. `splits`: the data, when already read with
    `slotkeras.splits.load_splits(config)`; read here otherwise.

    In a multi-worker run (docs/distributed.md) every worker calls it with the same
    config; only the chief writes the model folder, the others return their metrics
    with `"chief": False` and leave nothing behind.

    One run at a time writes a model folder: the chief holds its lock
    (`slotkeras.folder_lock`) for the whole run; FolderLockedError if another has it."""
    config.validate()
    started = time.time()
    # The strategy first: a multi-worker strategy must exist before any other TF op.
    strategy = distributed.make_strategy(config.strategy)
    chief = distributed.is_chief(strategy)  # the other workers write folders of their own
    with folder_lock.hold(config.output) if chief else contextlib.nullcontext():
        return _train(config, log, splits, strategy, started)


def _train(config: TrainConfig, log, splits: Splits | None, strategy, started: float) -> dict:
    chief = distributed.is_chief(strategy)
    seed_everything(config)
    if splits is None:
        splits = load_splits(config)
    # Settings left to the data are decided here, so that config.json records them.
    config, decided = data_size.adapted(config, splits.train)
    if decided:
        shown = {
            k: ("on" if v else "off") if isinstance(v, bool) else v for k, v in decided.items()
        }
        log("From the training data's size: " + ", ".join(f"{k} {v}" for k, v in shown.items()))
    # A lexicon the run cannot read stops it before anything is written.
    words = lexicon_words(config, splits)
    log(f"Training on {distributed.describe_devices(strategy)}")
    work_dir = work_dir_for(config, strategy)

    # --- features and labels, adapted on the training split only ---
    inputs = training_inputs(config, splits, strategy.num_replicas_in_sync, words)
    log(
        f"{len(splits.train)} training and {len(splits.valid)} validation utterances; "
        f"{len(inputs.featurizer.vocabulary)} words (+ Other), {len(inputs.tags)} tags "
        f"({inputs.tag_scheme.upper()}), {inputs.num_intents} intents"
    )
    if inputs.featurizer.lexicon:
        words_in = len(inputs.featurizer.lexicon)
        log(f"Lexicon matches marked from {words_in} words ({config.lexicon})")

    # --- the model, from the checkpoint of an interrupted run when there is one ---
    tagger = compiled_tagger_for(config, inputs, strategy)
    if config.jit_compile:
        compiled = "on (seeded, not bit-for-bit reproducible)" if tagger.jit_compile else "off"
        log(f"XLA compilation: {compiled}")
    checkpoint = Checkpoint(work_dir)
    state, best_weights = resume_or_start(checkpoint, tagger, config, strategy, log)

    # --- fit, with early stopping on validation slot F1 ---
    early_stopping = EarlyStoppingOnSlotF1(config.patience, state, best_weights)
    history = list(state["history"]) if state else []
    initial_epoch = state["epoch"] if state else 0
    if (state and state["stopped"]) or initial_epoch >= config.epochs:
        if best_weights is not None:
            tagger.set_weights(best_weights)  # the run had ended: only its result is kept
    else:
        callbacks = _callbacks(inputs, checkpoint, early_stopping, history)
        if config.tensorboard and chief:
            callbacks.append(keras.callbacks.TensorBoard(config.tensorboard))
        _fit(tagger, inputs, strategy, config, initial_epoch, callbacks, work_dir)
    if early_stopping.failure is not None:
        if early_stopping.best is None:  # no good epoch, so no checkpoint worth resuming
            shutil.rmtree(work_dir, ignore_errors=True)
            raise TrainingError(early_stopping.failure + "; nothing was written")
        log("warning: " + early_stopping.failure)
    train_seconds = time.time() - started
    if distributed.in_multi_worker_mode(strategy):
        task = distributed.task_name(strategy)
        log(f"Task {task}: final weights sha256 {distributed.weights_digest(tagger)}")

    # --- the model folder, written aside and renamed into place ---
    filler, tokenizer = _slot_filler(config, inputs, tagger, splits.train)
    validation = evaluation.evaluate(filler, splits.valid)
    refit = None
    if config.refit:
        # Validation figures are the selected model's: the refit one has seen the split.
        epochs = early_stopping.best_epoch + 1
        log(f"Refitting on the training and validation splits for {epochs} epochs")
        inputs, tagger = _refit(config, splits, strategy, epochs, words)
        filler, tokenizer = _slot_filler(config, inputs, tagger, splits.train + splits.valid)
        refit = {"epochs": epochs, "utterances": len(splits.train) + len(splits.valid)}
        train_seconds = time.time() - started
    metrics = {
        "validation": validation,
        "refit": refit,
        **_run_figures(config, early_stopping, history, tagger, inputs, splits),
        "train_seconds": round(train_seconds, 2),
        "warning": data_size.silent_failure(validation),
    }
    if metrics["warning"]:
        log("warning: " + metrics["warning"])
    if not chief:  # another worker: its scratch folder goes, the chief reports
        shutil.rmtree(work_dir, ignore_errors=True)
        log(f"Task {distributed.task_name(strategy)} done; the chief writes {config.output}")
        return {**metrics, "chief": False}
    _save(config, work_dir, filler, history, metrics, tokenizer, log)
    if splits.test is not None:
        metrics["test"] = evaluation.evaluate(filler, splits.test)
        metrics["test_source"] = splits.test_source
    return metrics


def _run_figures(config, early_stopping, history, tagger, inputs, splits) -> dict:
    """The metrics of the fit: its epochs, the model's size, the data it saw."""
    return {
        "best_epoch": early_stopping.best_epoch + 1,
        "epochs_trained": len(history),
        "parameters": int(tagger.count_params()),
        "lexicon_words": len(inputs.featurizer.lexicon),
        "tag_scheme": inputs.tag_scheme,
        "train_utterances": len(splits.train),
        "valid_utterances": len(splits.valid),
        "stopped_early": early_stopping.wait >= config.patience,
        "failure": early_stopping.failure,
    }


def _slot_filler(config: TrainConfig, inputs: TrainingInputs, tagger, train_utterances):
    """The end-to-end tagger with its labels and its tokenizer, fitted on the
    utterances it was trained on; and the tokenizer's config."""
    tokenizer = Tokenizer.fit(u.tokens for u in train_utterances).get_config()
    # The deployable model is a copy without the optimizer, whose moments and weight
    # averages (three times the weights) would otherwise fill model.keras and the
    # SavedModel.
    served = type(tagger).from_config(tagger.get_config())  # not compiled
    served.set_weights(tagger.get_weights())
    filler = SlotFiller(
        models.build_end_to_end(inputs.featurizer, served),
        inputs.tags.labels,
        inputs.intents.labels if inputs.intents else [],
        {**config.to_dict(), "tokenizer": tokenizer},
    )
    return filler, tokenizer


def _refit(config: TrainConfig, splits: Splits, strategy, epochs: int, words):
    """A fresh tagger trained on the training and validation splits together for
    `epochs` epochs (those early stopping chose), features adapted on both, weight
    average kept: all the labelled data, once the validation split has chosen the
    epochs (the CRF anchor of docs/benchmarks.md trains on both too). It is not
    checkpointed: a run interrupted here resumes after its early stop and refits anew,
    to the same weights."""
    seed_everything(config)
    both = Splits(splits.train + splits.valid, splits.valid, splits.test, splits.test_source)
    inputs = training_inputs(config, both, strategy.num_replicas_in_sync, words)
    tagger = compiled_tagger_for(config, inputs, strategy)
    dataset = inputs.train_from(0)
    distributed.prepare_distributed_fit(tagger, dataset, strategy)
    tagger.fit(
        dataset,
        epochs=epochs,
        callbacks=[AveragedWeights()],  # ends with the average in the model
        verbose=progress_verbosity(config.verbose),
        steps_per_epoch=inputs.steps_per_epoch,
        shuffle=False,
    )
    return inputs, tagger


def _save(config: TrainConfig, work_dir: Path, filler, history, metrics, tokenizer, log):
    """Writes the model folder aside, renames it into place and drops the work folder."""
    folder = work_dir / "model"
    write_model_folder(folder, filler, config.to_dict(), history, metrics, tokenizer)
    if config.export:
        export_saved_model(filler, folder / "saved_model")
    write_manifest(folder)  # last: a folder with a manifest is complete
    replace_folder(folder, Path(config.output))
    shutil.rmtree(work_dir, ignore_errors=True)
    log(
        f"Saved {config.output} (best epoch {metrics['best_epoch']}, validation slot F1 "
        f"{metrics['validation']['slot_f1']:.2f}, {metrics['train_seconds']:.1f} s)"
    )


def _callbacks(inputs: TrainingInputs, checkpoint, early_stopping, history) -> list:
    """The run's callbacks, in the order each epoch's end needs them: the average in,
    validation on it, early stopping (keeping the average), the checkpoint."""
    valid = inputs.valid_utterances
    gold_intents = None
    if inputs.intents is not None:
        gold_intents = [inputs.intents.index.get(u.intent, -1) for u in valid]
    slot_f1 = SlotF1(
        inputs.valid,
        [list(u.tags) for u in valid],
        gold_intents,
        [output_tag(tag) for tag in inputs.tags.labels],
        inputs.num_intents,
    )
    averaged = AveragedWeights()
    epoch_checkpoint = EpochCheckpoint(checkpoint, averaged, early_stopping, history)
    return [averaged, slot_f1, early_stopping, epoch_checkpoint]


def _fit(tagger, inputs: TrainingInputs, strategy, config, initial_epoch, callbacks, work_dir):
    dataset = inputs.train_from(initial_epoch)
    steps_per_epoch = inputs.steps_per_epoch
    distributed.prepare_distributed_fit(tagger, dataset, strategy)
    multi_worker = distributed.in_multi_worker_mode(strategy)
    with distributed.lost_worker_is_an_error(work_dir if multi_worker else None):
        tagger.fit(
            dataset,
            epochs=config.epochs,
            initial_epoch=initial_epoch,
            callbacks=callbacks,
            verbose=progress_verbosity(config.verbose),
            steps_per_epoch=steps_per_epoch,  # one dataset for all epochs: one iterator
            shuffle=False,  # the dataset shuffles itself, reproducibly
        )
