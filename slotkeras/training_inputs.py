"""From a run's splits to the model's inputs: the vocabularies and the featurizer,
adapted on the training split only, and the training and validation datasets."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from slotkeras import data_size, lexicon
from slotkeras.config import TrainConfig
from slotkeras.datasets import featurize, featurize_vectors, make_dataset
from slotkeras.layers.token_featurizer import OTHER_INDEX, TokenFeaturizer
from slotkeras.splits import Splits
from slotkeras.tag_schemes import iob_spans, to_bioes
from slotkeras.vocabularies import LabelVocabulary, build_vocabulary

VALIDATION_BATCH = 256  # utterances per validation batch (no gradients: any size fits)
# Epoch e of a run with seed s shuffles with seed s * _SEED_STRIDE + e.
_SEED_STRIDE = 1_000_003


@dataclass
class TrainingInputs:
    featurizer: TokenFeaturizer
    tags: LabelVocabulary  # in `tag_scheme`
    intents: LabelVocabulary | None  # None: no intent head
    train_from: Callable[[int], tf.data.Dataset]  # the batches of the epochs left
    steps_per_epoch: int
    valid: tf.data.Dataset  # inputs of `valid_utterances`, in their order
    valid_utterances: list  # the validation split, sorted by length
    tag_scheme: str  # "bio" or "bioes": the tags the model learns
    word_vectors: np.ndarray | None = None  # pretrained rows of `vector_ids` 1.. (or none)

    @property
    def num_intents(self) -> int:
        return len(self.intents) if self.intents is not None else 0


def lexicon_words(config: TrainConfig, splits: Splits) -> list[tuple[str, str]]:
    """The lexicon's (word, tag) pairs of a run (`slotkeras.lexicon`), chosen on the
    training split; none with the 1-of-N encoding alone, since its matches join the
    trigrams' bag."""
    if config.encoding == "onehot":
        return []
    return lexicon.lexicon_for(config.lexicon, (u.tokens for u in splits.train))


def training_inputs(
    config: TrainConfig,
    splits: Splits,
    replicas: int = 1,
    words: list[tuple[str, str]] | None = None,
) -> TrainingInputs:
    """The featurizer, label vocabularies and datasets of a run. `replicas`: the
    strategy's replicas in sync; a training batch holds `batch_size` utterances each.
    `words`: the run's `lexicon_words`, when already read."""
    train = splits.train
    if words is None:
        words = lexicon_words(config, splits)
    vocabulary = build_vocabulary(
        (u.tokens for u in train),
        lowercase=config.lowercase,
        min_count=config.min_count,
        max_size=config.max_vocab,
    )
    vector_words, word_vectors = _pretrained(config, train)
    featurizer = TokenFeaturizer(
        vocabulary,
        lowercase=config.lowercase,
        num_buckets=config.hash_buckets,
        max_trigrams=config.max_trigrams,
        lexicon=[word for word, _ in words],
        lexicon_tags=[tag for _, tag in words],
        max_word_length=lexicon.MAX_WORD_LENGTH,
        vector_vocabulary=vector_words,
        name="token_featurizer",
    )
    scheme = tag_scheme_for(config, train)
    train_tags = [model_tags(scheme, u.tags) for u in train]
    tags = LabelVocabulary.from_tags(train_tags)
    intents = None
    if config.joint_intent and all(u.intent is not None for u in train):
        intents = LabelVocabulary.from_labels(u.intent for u in train)

    global_batch = config.batch_size * replicas
    arrays = _dataset_arrays(featurizer, train, train_tags, tags, intents)
    train_vector_ids = _vector_ids(featurizer, train)
    # Trigrams alone have no 1-of-N word to drop.
    rates = word_dropout_rates(
        arrays[0], featurizer.vocabulary_size, config.word_dropout, config.rare_word_dropout
    ) * (config.encoding != "hash")

    passes = data_size.passes_per_epoch(config, len(train))

    def epoch(number):
        """Epoch `number`'s batches, by length, in an order and with a word dropout
        drawn from the seed and the epoch's number alone."""
        batches = make_dataset(
            *arrays,
            vector_ids=train_vector_ids,
            batch_size=global_batch,
            shuffle=True,
            seed=config.seed * _SEED_STRIDE + number,
            max_trigrams=config.max_trigrams,
        )
        if passes > 1:  # reshuffled at each pass: the dataset reshuffles each iteration
            batches = batches.repeat(passes)
        if rates.any():
            batches = batches.enumerate().map(_word_dropout(rates, config.seed, number))
        return batches

    # The batches of an epoch (known: `make_dataset` batches by length reproducibly).
    steps_per_epoch = int(epoch(0).cardinality())
    if steps_per_epoch < 1:
        steps_per_epoch = math.ceil(len(train) / global_batch)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    # No autotuning thread: when early stopping drops the stream mid-way, the
    # iterator's teardown joins that thread, which was seen to sleep out its
    # optimization period first (up to a minute). The stream is one cheap
    # length-bucketed pass per epoch and gains nothing from autotuning.
    options.autotune.enabled = False

    def train_from(first_epoch: int) -> tf.data.Dataset:
        """The batches of epochs `first_epoch` to `config.epochs`, one after the other:
        a resumed run gets the very batches of the uninterrupted one."""
        epochs = tf.data.Dataset.range(first_epoch, max(config.epochs, first_epoch))
        return epochs.flat_map(epoch).with_options(options)

    valid, valid_ds = _validation_inputs(featurizer, splits.valid, config)
    return TrainingInputs(
        featurizer,
        tags,
        intents,
        train_from,
        steps_per_epoch,
        valid_ds,
        valid,
        scheme,
        word_vectors,
    )


def tag_scheme_for(config: TrainConfig, train) -> str:
    """The tags a run's model learns: `config.tag_scheme`, and for "auto" BIOES when at
    least half of the training split's spans are longer than one token, BIO otherwise.

    BIOES tags a span's last token (E-) and a one-token span (S-) apart, so the CRF
    learns where spans end, not only where they start. That pays where spans are
    long: it won on the validation splits of MIT Movie and Resume NER, whose spans
    run over several tokens, and lost on ATIS's, mostly one word long, where it
    mainly splits the examples of each rare slot type between two tags
    (docs/experiments/bioes.md)."""
    if config.tag_scheme != "auto":
        return config.tag_scheme
    lengths = [end - start for u in train for _, start, end in iob_spans(u.tags)]
    longer = sum(length > 1 for length in lengths)
    return "bioes" if lengths and 2 * longer >= len(lengths) else "bio"


def model_tags(scheme: str, tags):
    """An utterance's BIO tags in the scheme the model learns."""
    return to_bioes(tags) if scheme == "bioes" else list(tags)


def _validation_inputs(featurizer, utterances, config: TrainConfig):
    """The validation utterances sorted by length (batches hold little padding) and
    their inputs; they are scored on their BIO tags (`valid_utterances`)."""
    order = np.argsort([len(u.tokens) for u in utterances], kind="stable")
    valid = [utterances[i] for i in order]
    word_ids, trigram_ids = featurize(featurizer, [u.tokens for u in valid])
    valid_ds = make_dataset(
        word_ids,
        trigram_ids,
        batch_size=VALIDATION_BATCH,
        max_trigrams=config.max_trigrams,
        vector_ids=_vector_ids(featurizer, valid),
    )
    return valid, valid_ds


def _pretrained(config: TrainConfig, train) -> tuple[list[str], np.ndarray | None]:
    """The words and rows of `config.word_vectors` the run keeps: its training words'
    and the `max_word_vectors` most frequent."""
    if config.word_vectors is None:
        return [], None
    from slotkeras.word_vectors import load_word_vectors

    words = (token for u in train for token in u.tokens)
    return load_word_vectors(
        config.word_vectors, words, config.max_word_vectors, lowercase=config.lowercase
    )


def _vector_ids(featurizer, utterances):
    if not featurizer.vector_vocabulary:
        return None
    return featurize_vectors(featurizer, [u.tokens for u in utterances])


def _dataset_arrays(featurizer, utterances, tag_lists, tag_vocab, intent_vocab):
    """Inputs and targets of `utterances`; `tag_lists`: their tags as the model learns
    them (`model_tags`)."""
    token_lists = [u.tokens for u in utterances]
    word_ids, trigram_ids = featurize(featurizer, token_lists)
    slot_ids = [tag_vocab.encode(tags, unknown=0) for tags in tag_lists]
    intent_ids = None
    if intent_vocab is not None:
        intent_ids = [intent_vocab.index.get(u.intent, 0) for u in utterances]
    return word_ids, trigram_ids, slot_ids, intent_ids


def word_dropout_rates(word_ids, vocabulary_size: int, rate: float, rare: float) -> np.ndarray:
    """Each 1-of-N word's probability of being replaced by "Other" in training: `rate`,
    and with `rare` > 0, `rate + (1 - rate) * rare / (rare + c)` for a word seen c
    times in `word_ids` (the training split's). "Other" and padding are never dropped."""
    rates = np.full(vocabulary_size, rate, dtype=np.float32)
    if rare > 0:
        counts = np.bincount(np.concatenate(word_ids), minlength=vocabulary_size)
        rates += (1.0 - rate) * rare / (rare + counts[:vocabulary_size])
    rates[: OTHER_INDEX + 1] = 0.0
    return rates


def _word_dropout(rates: np.ndarray, seed: int, epoch):
    """Replaces training words by "Other" (their trigrams stay), each with its rate in
    `rates` (`word_dropout_rates`), drawn for each batch from the seed, the epoch and
    the batch's number."""
    rates = tf.constant(rates)

    def apply(batch, element):
        inputs, targets = element
        word_ids = inputs["word_ids"]
        batch_seed = tf.stack([tf.cast(seed, tf.int64), tf.cast(epoch, tf.int64) * 2**20 + batch])
        rate = tf.gather(rates, word_ids)
        # A draw in [0, 1) is never below the zero rate of padding and "Other".
        drop = tf.random.stateless_uniform(tf.shape(word_ids), seed=batch_seed) < rate
        word_ids = tf.where(drop, OTHER_INDEX, word_ids)
        return {**inputs, "word_ids": word_ids}, targets

    return apply
