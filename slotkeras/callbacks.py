"""The callbacks of a training run, in the order `fit` calls them at the end of an epoch:
the weight average into the model, validation slot F1 (`val_slot_f1`), early stopping
on it, and the history row and checkpoint of the epoch."""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from slotkeras import evaluation
from slotkeras.checkpoint import Checkpoint
from slotkeras.decoding import make_decoder


class AveragedWeights(keras.callbacks.Callback):
    """Puts the optimizer's moving average of the weights (`use_ema`) into the model at
    the end of every epoch, for the callbacks after it (validation, early stopping and
    its best weights), and the training weights back when the next epoch begins.

    Keras's `SwapEMAWeights(swap_on_epoch=True)` does the same by swapping with
    additions (`a + b - b`), which float32 does not undo exactly: the weights trained
    on would drift, and a resumed run would not be the uninterrupted one. Here the
    training weights are kept as copies."""

    def __init__(self):
        super().__init__()
        self._training = []  # (variable, training value) while the average is in

    def _pairs(self) -> list:
        optimizer = self.model.optimizer
        if optimizer is None or not optimizer.use_ema or not optimizer.built:
            return []
        # Keras has no public accessor for the averages; SwapEMAWeights reads the same
        # two lists, in step with each other.
        return list(zip(optimizer._trainable_variables, optimizer._model_variables_moving_average))

    def on_epoch_end(self, epoch, logs=None):
        pairs = self._pairs()
        self._training = [(variable, variable.numpy()) for variable, _ in pairs]
        for variable, average in pairs:
            variable.assign(average)

    def on_epoch_begin(self, epoch, logs=None):
        for variable, value in self._training:
            variable.assign(value)
        self._training = []

    def training_weights(self) -> list:
        """The model's weights (`model.weights` order) with the training values, also
        while the average is in the model."""
        kept = {id(variable): value for variable, value in self._training}
        return [kept[id(v)] if id(v) in kept else v.numpy() for v in self.model.weights]


class SlotF1(keras.callbacks.Callback):
    """Span-level slot F1 on the validation split after every epoch, as `val_slot_f1` in
    the logs (and `val_intent_accuracy` with intents): for early stopping, the history
    and the progress bar. `dataset`: the validation inputs in the order of
    `gold_tags`."""

    def __init__(self, dataset, gold_tags, gold_intents, tag_names, num_intents):
        super().__init__()
        self.dataset = dataset
        self.gold_tags = gold_tags
        self.gold_intents = gold_intents
        self.tag_names = tag_names
        self.num_intents = num_intents
        self._decode = None

    def evaluate(self) -> tuple[float, float | None]:
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
        if not self.num_intents or self.gold_intents is None:
            return f1, None
        hits = sum(int(g == p) for g, p in zip(self.gold_intents, intents))
        return f1, 100.0 * hits / max(len(intents), 1)

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or not _finite_loss(logs):
            return  # nothing worth validating: early stopping ends the run
        logs["val_slot_f1"], intent_accuracy = self.evaluate()
        if intent_accuracy is not None:
            logs["val_intent_accuracy"] = intent_accuracy


class EarlyStoppingOnSlotF1(keras.callbacks.EarlyStopping):
    """Keras's early stopping on `val_slot_f1`, restoring the best weights at the end,
    which also stops on a non-finite loss (`failure` says why), stops once the F1 is 100
    (no later epoch can be strictly better), and can go on from a checkpoint's
    `state()` and best weights."""

    def __init__(self, patience: int, state: dict | None = None, best_weights=None):
        super().__init__(
            monitor="val_slot_f1", mode="max", patience=patience, restore_best_weights=True
        )
        self.failure = None
        self._resumed = (state, best_weights)
        self.on_train_begin()  # the state is known before `fit` (or without one)

    def state(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)  # which resets the state: a resumed run's comes back
        state, best_weights = self._resumed
        if state is not None and state.get("best") is not None:
            self.best, self.best_epoch = state["best"], state["best_epoch"]
            self.wait, self.best_weights = state["wait"], best_weights

    def on_epoch_end(self, epoch, logs=None):
        if not _finite_loss(logs or {}):
            loss = logs["loss"]
            self.failure = (
                f"training loss became {loss} in epoch {epoch + 1}; stopped and kept the "
                f"model of epoch {self.best_epoch + 1} (validation slot F1 {self.best:.2f})"
                if self.best is not None
                else f"training loss became {loss} in epoch {epoch + 1}, before any good epoch"
            )
            self.model.stop_training = True
            return
        super().on_epoch_end(epoch, logs)
        if self.best is not None and self.best >= 100.0:
            self.model.stop_training = True


class EpochCheckpoint(keras.callbacks.Callback):
    """After every good epoch: its row of the history and, given a `checkpoint`, the
    checkpoint that the same command resumes from after an interruption."""

    def __init__(
        self,
        checkpoint: Checkpoint | None,
        averaged: AveragedWeights,
        early_stopping: EarlyStoppingOnSlotF1,
        history: list[dict],
    ):
        super().__init__()
        self.checkpoint = checkpoint
        self.averaged = averaged
        self.early_stopping = early_stopping
        self.history = history

    def on_epoch_end(self, epoch, logs=None):
        if self.early_stopping.failure is not None:
            return  # the failed epoch is neither history nor a state to resume
        self.history.append({"epoch": epoch + 1, **{k: float(v) for k, v in logs.items()}})
        if self.checkpoint is None:
            return
        state = {
            "epoch": epoch + 1,
            **self.early_stopping.state(),
            "history": self.history,
            "stopped": bool(self.model.stop_training),
        }
        self.checkpoint.save(
            self.model,
            state,
            weights=self.averaged.training_weights(),
            best_weights=self.early_stopping.best_weights,
        )


def _finite_loss(logs: dict) -> bool:
    loss = logs.get("loss")
    return loss is None or math.isfinite(loss)
