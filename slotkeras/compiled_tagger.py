"""The tagger of a run compiled for training: `models.build_tagger` with the slot loss
(the CRF's, or cross-entropy that ignores padding), the intent loss and its weight, and
the optimizer with its clipping, weight average and learning-rate schedule."""

from __future__ import annotations

import functools

import keras

from slotkeras import models
from slotkeras.config import TrainConfig
from slotkeras.datasets import LABEL_PAD
from slotkeras.optimizers import FusedAdam, LazyAdam
from slotkeras.training_inputs import TrainingInputs


def build_compiled_tagger(
    config: TrainConfig,
    num_tags: int,
    vocabulary_size: int,
    num_intents: int,
    steps_per_epoch: int = 1,
    tag_names=None,
    word_vectors=None,
) -> keras.Model:
    """The tagger of a run, compiled with its losses and optimizer (call it under the
    strategy's scope). `steps_per_epoch`: the optimizer steps over which the learning
    rate falls by `config.learning_rate_decay`. `tag_names`: see `models.build_tagger`."""
    tagger = models.build_tagger(
        num_tags=num_tags,
        tag_names=tag_names,
        word_vectors=word_vectors,
        vocabulary_size=vocabulary_size,
        num_intents=num_intents,
        **models.tagger_options(config),
    )
    if config.output_layer == "crf":
        from slotkeras.decoding import find_crf
        from slotkeras.layers.crf import CRFLoss

        slot_loss = CRFLoss(find_crf(tagger))
    else:
        slot_loss = keras.losses.SparseCategoricalCrossentropy(ignore_class=LABEL_PAD)
    losses = {"slots": slot_loss}
    weights = {"slots": 1.0}
    if num_intents:
        losses["intent"] = keras.losses.SparseCategoricalCrossentropy()
        weights["intent"] = config.effective_intent_loss_weight
    optimizer_class = {
        "adam": FusedAdam,
        "lazy_adam": LazyAdam,
        "summed_adam": functools.partial(FusedAdam, square_slices=False),
    }[config.optimizer]
    averaging = {}
    if config.weight_averaging > 0:
        averaging = {
            "use_ema": True,
            "ema_momentum": config.weight_averaging,
            "ema_warmup": config.weight_averaging_warmup,
        }
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


def compiled_tagger_for(config: TrainConfig, inputs: TrainingInputs, strategy) -> keras.Model:
    """`build_compiled_tagger` sized by a run's vocabularies, under its strategy's scope."""
    with strategy.scope():
        return build_compiled_tagger(
            config,
            len(inputs.tags),
            inputs.featurizer.vocabulary_size,
            inputs.num_intents,
            steps_per_epoch=inputs.steps_per_epoch,
            tag_names=inputs.tags.labels,
            word_vectors=inputs.word_vectors,
        )
