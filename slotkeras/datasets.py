"""tf.data pipelines over featurized utterances: padded token batches, the featurizer
run in chunks, and batches bucketed by length."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

LABEL_PAD = -1  # label value of padded time steps; losses and metrics ignore it


def pad_tokens(token_lists: Sequence[Sequence[str]]) -> np.ndarray:
    """Token lists as a `[batch, time]` object array padded with "" (time >= 1)."""
    width = max([len(tokens) for tokens in token_lists] + [1])
    out = np.full((len(token_lists), width), "", dtype=object)
    for i, tokens in enumerate(token_lists):
        out[i, : len(tokens)] = tokens
    return out


def featurize(
    featurizer, token_lists: Sequence[Sequence[str]], chunk_size: int = 2048
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Runs the featurizer over utterances in chunks; returns per-utterance arrays
    (word ids `[len]`, trigram ids `[len, max_trigrams]`), unpadded."""
    word_ids, trigram_ids = [], []
    for start in range(0, len(token_lists), chunk_size):
        chunk = token_lists[start : start + chunk_size]
        features = featurizer(tf.constant(pad_tokens(chunk).astype(str)))
        words = features["word_ids"].numpy()
        trigrams = features["trigram_ids"].numpy()
        for i, tokens in enumerate(chunk):
            word_ids.append(words[i, : len(tokens)])
            trigram_ids.append(trigrams[i, : len(tokens)])
    return word_ids, trigram_ids


def featurize_vectors(featurizer, token_lists: Sequence[Sequence[str]], chunk_size: int = 2048):
    """Each utterance's `vector_ids` `[len]` (a featurizer with a vector vocabulary)."""
    out = []
    for start in range(0, len(token_lists), chunk_size):
        chunk = token_lists[start : start + chunk_size]
        ids = featurizer(tf.constant(pad_tokens(chunk).astype(str)))["vector_ids"].numpy()
        out.extend(ids[i, : len(tokens)] for i, tokens in enumerate(chunk))
    return out


def length_buckets(max_len: int) -> list[int]:
    """Bucket boundaries for batching by length: fine for short utterances, coarser
    for long ones, so padding wastes little and few shapes are traced."""
    bounds, b = [], 4
    while b < max_len + 1:
        bounds.append(b)
        b = b + 2 if b < 16 else b + 4 if b < 32 else b + 8 if b < 64 else b * 2
    return bounds


def make_dataset(
    word_ids: Sequence[np.ndarray],
    trigram_ids: Sequence[np.ndarray],
    slot_ids: Sequence[Sequence[int]] | None = None,
    intent_ids: Sequence[int] | None = None,
    *,
    batch_size: int = 32,
    shuffle: bool = False,
    seed: int = 0,
    max_trigrams: int = 16,
    vector_ids: Sequence[np.ndarray] | None = None,
) -> tf.data.Dataset:
    """A tf.data pipeline over featurized utterances: batches of similar length
    (bucketing), padded (ids with 0, labels with `LABEL_PAD`), cached and prefetched.

    Elements are `inputs` or `(inputs, targets)` with `inputs` a dict of
    `word_ids` `[batch, time]` and `trigram_ids` `[batch, time, max_trigrams]` (and
    `vector_ids` `[batch, time]` when given), and
    `targets` a dict of `slots` `[batch, time]` and, with intents, `intent` `[batch]`.
    Without shuffling the order of the utterances is kept (one bucket), so
    predictions line up with the input.
    """
    lengths = np.array([len(w) for w in word_ids], dtype=np.int64)
    flat_words = (
        np.concatenate(word_ids).astype(np.int32) if len(lengths) else np.zeros(0, np.int32)
    )
    flat_tri = (
        np.concatenate(trigram_ids).astype(np.int32).reshape(-1, max_trigrams)
        if len(lengths)
        else np.zeros((0, max_trigrams), np.int32)
    )
    inputs = {
        "word_ids": tf.RaggedTensor.from_row_lengths(flat_words, lengths),
        "trigram_ids": tf.RaggedTensor.from_row_lengths(flat_tri, lengths),
    }
    padded_shapes = {"word_ids": [None], "trigram_ids": [None, max_trigrams]}
    padding_values = {"word_ids": 0, "trigram_ids": 0}
    if vector_ids is not None:  # pretrained vectors' ids, 0 where a word has none
        flat = np.concatenate(vector_ids).astype(np.int32) if len(lengths) else np.zeros(0)
        inputs["vector_ids"] = tf.RaggedTensor.from_row_lengths(flat.astype(np.int32), lengths)
        padded_shapes["vector_ids"] = [None]
        padding_values["vector_ids"] = 0
    element = inputs
    if slot_ids is not None:
        targets = {
            "slots": tf.RaggedTensor.from_row_lengths(
                np.concatenate([np.asarray(s, np.int32) for s in slot_ids]).astype(np.int32),
                lengths,
            )
        }
        target_shapes = {"slots": [None]}
        target_padding = {"slots": LABEL_PAD}
        if intent_ids is not None:
            targets["intent"] = np.asarray(intent_ids, np.int32)
            target_shapes["intent"] = []
            target_padding["intent"] = 0
        element = (inputs, targets)
        padded_shapes = (padded_shapes, target_shapes)
        padding_values = (padding_values, target_padding)

    def dense(*parts):
        return tf.nest.map_structure(
            lambda t: t.to_tensor() if isinstance(t, tf.RaggedTensor) else t,
            parts[0] if len(parts) == 1 else parts,
        )

    ds = tf.data.Dataset.from_tensor_slices(element).map(dense).cache()
    if shuffle:
        ds = ds.shuffle(len(lengths), seed=seed, reshuffle_each_iteration=True)
        bounds = length_buckets(int(lengths.max()) if len(lengths) else 1)

        def length_of(*args):
            return tf.shape(args[0]["word_ids"])[0]

        ds = ds.bucket_by_sequence_length(
            length_of,
            bucket_boundaries=bounds,
            bucket_batch_sizes=[batch_size] * (len(bounds) + 1),
            padded_shapes=padded_shapes,
            padding_values=padding_values,
        )
        # Every epoch has the same batches per bucket: tell Keras how many.
        per_bucket = np.bincount(np.searchsorted(bounds, lengths, side="right"))
        steps = int(np.sum(np.ceil(per_bucket / batch_size)))
        ds = ds.apply(tf.data.experimental.assert_cardinality(steps))
    else:
        ds = ds.padded_batch(batch_size, padded_shapes=padded_shapes, padding_values=padding_values)
    return ds.prefetch(tf.data.AUTOTUNE)
