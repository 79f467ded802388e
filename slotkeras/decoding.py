"""Decoding a tagger's outputs into tag ids: Viterbi with a CRF output, the most likely
tag per token otherwise, with the rule that forces unseen marks outside any span; and
the length-sorted chunks a large served batch is decoded in. Training (validation
F1) and inference both decode here."""

from __future__ import annotations

import keras
import tensorflow as tf

from slotkeras.layers.crf import CRF


def find_crf(model: keras.Model):
    """The CRF layer of a tagger (or of an end-to-end model around one), or None."""
    for layer in model.layers:  # a tagger nested in a model is one of its layers
        if isinstance(layer, CRF):
            return layer
        if isinstance(layer, keras.Model) and (crf := find_crf(layer)) is not None:
            return crf
    return None


def make_decoder(model: keras.Model, num_intents: int, probabilities: bool = False, outside=None):
    """A function from model inputs to (tag ids, intent ids, intent probabilities):
    Viterbi decoding with a CRF output, the most likely tag per token otherwise.
    With `probabilities`, the probability of each decoded tag comes second: the
    CRF's marginal (forward-backward) or the softmax probability; 0 on padding.
    `outside`: a function of string tokens (and the tokenizer's `split_marks`, when
    the decoder is given them), True where a token must be tagged "O" (tag id 0);
    the CRF then decodes, and computes marginals, under that constraint.

    `model` is either the id-level tagger (inputs a dict of ids) or the end-to-end
    model (inputs string tokens); the mask comes from the inputs' padding."""
    crf = find_crf(model)

    def decode(inputs, split_marks=None):
        outputs = model(inputs, training=False)
        if isinstance(inputs, dict):
            mask = tf.greater(inputs["word_ids"], 0)
        else:
            mask = tf.not_equal(inputs, "")
        slots = outputs["slots"]
        if outside is not None:
            forced = outside(inputs, split_marks) & mask
            slots = _force_outside(slots, forced, crf is not None)
        chosen = None
        if crf is not None and probabilities:
            # The mask is the padding after each utterance's tokens: right padding.
            tag_ids, chosen = crf.decode_with_probabilities(slots, mask)
        elif crf is not None:
            tag_ids = crf.decode(slots, mask)
        else:
            tag_ids = tf.argmax(slots, axis=-1, output_type=tf.int32)
        tag_ids = tf.where(mask, tag_ids, tf.zeros_like(tag_ids))
        if num_intents:
            intent = outputs["intent"]
            intents = (
                tf.argmax(intent, axis=-1, output_type=tf.int32),
                tf.cast(tf.reduce_max(intent, axis=-1), tf.float32),
            )
        else:
            batch = tf.shape(tag_ids)[0]
            intents = (tf.zeros([batch], tf.int32), tf.ones([batch], tf.float32))
        if not probabilities:
            return (tag_ids, *intents)
        if chosen is None:  # the softmax's probability of each decoded tag
            chosen = tf.gather(tf.cast(slots, tf.float32), tag_ids, batch_dims=2)
        return (tag_ids, tf.where(mask, chosen, tf.zeros_like(chosen)), *intents)

    return decode


def _force_outside(slots, forced, scores: bool):
    """`slots` (CRF emission scores, or softmax probabilities) with every tag but
    "O" (id 0) ruled out where `forced`: such a token's row becomes one constant
    row, in one pass over `slots`. With a CRF it scores "O" 0 and the rest -1e4;
    every path left takes "O" there, so the score of "O" shifts them all alike and
    changes neither the best path nor the marginals."""
    rest = tf.fill(tf.shape(slots)[-1:] - 1, tf.constant(-1e4 if scores else 0.0, slots.dtype))
    row = tf.concat([tf.constant([0.0 if scores else 1.0], slots.dtype), rest], 0)
    return tf.where(forced[:, :, None], row, slots)


# What a decoder with probabilities returns: dtype and rank of each output.
DECODED = ((tf.int32, 2), (tf.float32, 2), (tf.int32, 1), (tf.float32, 1))


# Batches of more than this many utterances are served in chunks of this many,
# sorted by length, each padded to its own longest utterance rather than the batch's.
# Smaller chunks pad less, larger ones run the per-step ops of the LSTM and CRF loops
# fewer times; with the marginals' ops in the CRF loop, 64 served batches of 256
# faster than 32 or 128 (docs/experiments/serving_time.md).
SERVE_CHUNK = 64
# A chunk holds at most this many padded positions (rows x its longest utterance): a
# chunk of utterances longer than SERVE_LENGTH tokens holds fewer of them, so that one
# huge utterance runs alone (or nearly) instead of padding 63 others to its length. A
# position costs about 6 KB in flight in the default model (mostly its trigram
# embeddings), so a chunk stays under about 50 MB; ordinary chunks (64 utterances of
# at most 128 tokens) are the length-sorted chunks of 64 as before (docs/benchmarks.md,
# "Serving memory").
SERVE_LENGTH = 128


def chunk_bounds(lengths, chunk_size: int, max_positions: int) -> list[tuple[int, int]]:
    """The chunks `decode_in_chunks` makes of utterances of `lengths`, sorted by
    length (ascending), as (start, end) pairs: from each start, as many utterances as
    fit, at most `chunk_size`, padded positions at most `max_positions` (but one)."""
    bounds, start = [], 0
    while start < len(lengths):
        end = start + 1
        while (
            end < min(start + chunk_size, len(lengths))
            and (end + 1 - start) * max(lengths[end], 1) <= max_positions
        ):
            end += 1
        bounds.append((start, end))
        start = end
    return bounds


def needs_chunks(tokens, chunk_size: int, max_positions: int):
    """Whether a padded batch of `tokens` is decoded in chunks (a boolean tensor): more
    than `chunk_size` utterances, or more padded positions than `max_positions`."""
    shape = tf.shape(tokens)
    return (shape[0] > chunk_size) | (shape[0] * shape[1] > max_positions)


def decode_in_chunks(decode, tokens, split_marks, chunk_size: int, max_positions=None):
    """`decode(tokens, split_marks)` (a `make_decoder` function with probabilities) computed on
    chunks of similar length, each cut to its own longest utterance, and put back in the
    input's order and width: from each start in length order, `chunk_size` utterances,
    or fewer where that many would pad to more than `max_positions` positions
    (default `chunk_size * SERVE_LENGTH`; `chunk_bounds` in Python). The same
    results: the model masks padding. Compute grows with rows x time steps, and in a
    batch of random utterances most steps are padding; memory grows with the chunk's
    rows x time steps, which the bound keeps from one huge utterance's length x 64."""
    if max_positions is None:
        max_positions = chunk_size * SERVE_LENGTH
    lengths = tf.reduce_sum(tf.cast(tf.not_equal(tokens, ""), tf.int32), axis=1)
    order = tf.argsort(lengths, stable=True)
    sorted_lengths = tf.gather(lengths, order)
    batch, width = tf.shape(tokens)[0], tf.shape(tokens)[1]
    arrays = tuple(
        tf.TensorArray(dtype, 0, dynamic_size=True, infer_shape=False, element_shape=[None] * rank)
        for dtype, rank in DECODED
    )
    rows = tf.range(1, chunk_size + 1)

    def body(i, start, arrays):
        # As many rows as fit: rows x the last one's length (the chunk's longest) within
        # the bound, a prefix of `rows` since lengths ascend; at least one.
        last = tf.minimum(start + rows - 1, batch - 1)
        fits = (start + rows - 1 < batch) & (
            rows * tf.maximum(tf.gather(sorted_lengths, last), 1) <= max_positions
        )
        end = start + tf.maximum(tf.reduce_sum(tf.cast(fits, tf.int32)), 1)
        steps = tf.maximum(sorted_lengths[end - 1], 1)
        # The chunk's rows gathered one chunk at a time: no sorted copy of the batch.
        chunk = order[start:end]
        outputs = decode(
            tf.gather(tokens, chunk)[:, :steps], tf.gather(split_marks, chunk)[:, :steps]
        )
        outputs = tuple(
            tf.pad(o, [[0, 0], [0, width - steps]]) if rank == 2 else o
            for o, (_, rank) in zip(outputs, DECODED, strict=True)
        )
        arrays = tuple(a.write(i, o) for a, o in zip(arrays, outputs, strict=True))
        return i + 1, end, arrays

    _, _, arrays = tf.while_loop(lambda i, start, _: start < batch, body, (0, 0, arrays))
    restore = tf.math.invert_permutation(order)
    return tuple(tf.gather(a.concat(), restore) for a in arrays)
