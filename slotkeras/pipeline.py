"""From a run's splits to the model's inputs: the vocabularies and the featurizer,
adapted on the training split only, and the training and validation datasets."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from slotkeras import features
from slotkeras.config import TrainConfig
from slotkeras.splits import Splits

VALIDATION_BATCH = 256  # utterances per validation batch (no gradients: any size fits)


@dataclass
class TrainingInputs:
    featurizer: features.TokenFeaturizer
    tags: features.LabelVocabulary
    intents: features.LabelVocabulary | None  # None: no intent head
    train: tf.data.Dataset  # (inputs, targets), shuffled and batched by length
    steps_per_epoch: int
    valid: tf.data.Dataset  # inputs of `valid_utterances`, in their order
    valid_utterances: list  # the validation split, sorted by length

    @property
    def num_intents(self) -> int:
        return len(self.intents) if self.intents is not None else 0


def training_inputs(config: TrainConfig, splits: Splits, replicas: int = 1) -> TrainingInputs:
    """The featurizer, label vocabularies and datasets of a run. `replicas`: the
    strategy's replicas in sync; a training batch holds `batch_size` utterances each."""
    train = splits.train
    vocabulary = features.build_vocabulary(
        (u.tokens for u in train),
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
    tags = features.LabelVocabulary.from_tags(u.tags for u in train)
    intents = None
    if config.joint_intent and all(u.intent is not None for u in train):
        intents = features.LabelVocabulary.from_labels(u.intent for u in train)

    global_batch = config.batch_size * replicas
    train_ds = features.make_dataset(
        *_dataset_arrays(featurizer, train, tags, intents),
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
        steps_per_epoch = math.ceil(len(train) / global_batch)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    train_ds = train_ds.with_options(options)

    # Sorted by length, validation batches hold little padding.
    order = np.argsort([len(u.tokens) for u in splits.valid], kind="stable")
    valid = [splits.valid[i] for i in order]
    word_ids, trigram_ids, _, _ = _dataset_arrays(featurizer, valid, tags, intents)
    valid_ds = features.make_dataset(
        word_ids, trigram_ids, batch_size=VALIDATION_BATCH, max_trigrams=config.max_trigrams
    )
    return TrainingInputs(featurizer, tags, intents, train_ds, steps_per_epoch, valid_ds, valid)


def _dataset_arrays(featurizer, utterances, tag_vocab, intent_vocab):
    token_lists = [u.tokens for u in utterances]
    word_ids, trigram_ids = features.featurize(featurizer, token_lists)
    slot_ids = [tag_vocab.encode(u.tags, unknown=0) for u in utterances]
    intent_ids = None
    if intent_vocab is not None:
        intent_ids = [intent_vocab.index.get(u.intent, 0) for u in utterances]
    return word_ids, trigram_ids, slot_ids, intent_ids


def _word_dropout(rate: float, seed: int):
    """Replaces a share `rate` of the training words by "Other" (their trigrams stay),
    drawn anew in every epoch."""

    def apply(inputs, targets):
        word_ids = inputs["word_ids"]
        drop = tf.random.uniform(tf.shape(word_ids), seed=seed) < rate
        word_ids = tf.where(
            drop & (word_ids > features.OTHER_INDEX), features.OTHER_INDEX, word_ids
        )
        return {**inputs, "word_ids": word_ids}, targets

    return apply
