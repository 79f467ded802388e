"""The SavedModel export: the serving function (raw strings in, tokens, tags, offsets
and probabilities out) and the archive that TensorFlow Serving, KServe and
`saved_model_cli run` load."""

from __future__ import annotations

import os

import keras
import tensorflow as tf

from slotkeras.decoding import SERVE_CHUNK, SERVE_LENGTH, decode_in_chunks, needs_chunks
from slotkeras.file_writing import writing


def serving_function(filler, chunk_size: int = SERVE_CHUNK):
    """The SavedModel's `serve`: a 1-D string tensor of raw utterances to `tokens`,
    `tags` (2-D strings padded with ""), `starts`/`ends` (code point offsets, -1
    on padding), `tag_probabilities` (0 on padding) and, with intents, `intent`
    and `intent_probability`. `SlotFiller.tag_text` runs the same function. A batch
    of more than `chunk_size` utterances, or of more than `chunk_size * SERVE_LENGTH`
    padded positions (one huge utterance), is decoded in chunks (`decode_in_chunks`)."""
    tokenizer, tag_names, intent_names = filler.tokenizer, filler.tags, filler.intents
    decode = filler.decode
    max_positions = chunk_size * SERVE_LENGTH

    def serve(text):
        pieces = tokenizer.tokenize(text)
        tokens, split_marks = pieces["tokens"], pieces["split_marks"]
        tag_ids, tag_probs, intent_ids, intent_probs = tf.cond(
            needs_chunks(tokens, chunk_size, max_positions),
            lambda: decode_in_chunks(decode, tokens, split_marks, chunk_size, max_positions),
            lambda: decode(tokens, split_marks),
        )
        padding = tf.equal(tokens, "")
        # Names as graph constants, created in the trace: nothing to restore. Padding
        # is name 0 (""), so that one string tensor of the batch's size is made.
        names = tf.constant(["", *tag_names])
        tags = tf.gather(names, tf.where(padding, 0, tag_ids + 1))
        outputs = {
            "tokens": tokens,
            "tags": tags,
            "starts": pieces["starts"],
            "ends": pieces["ends"],
            "tag_probabilities": tf.where(padding, 0.0, tag_probs),
        }
        if intent_names:
            outputs["intent"] = tf.gather(tf.constant(intent_names), intent_ids)
            outputs["intent_probability"] = intent_probs
        return outputs

    return serve


def export_saved_model(filler, path: str | os.PathLike, chunk_size: int = SERVE_CHUNK) -> None:
    """Writes a SavedModel whose signature `serve` (also `serving_default`) is
    `serving_function`'s. Tokenization, lexicon lookup, hashing and decoding all
    run in the graph; batches of more than `chunk_size` utterances (or with a huge one)
    run in chunks of similar length.

    It is written through Keras's export API, which saves the variables the way a
    session restores them: TensorFlow Serving, KServe and `saved_model_cli run`
    load it as well as `tf.saved_model.load` does. A disk that refuses it (full,
    read-only) raises WriteError naming `path`."""
    archive = keras.export.ExportArchive()
    archive.track(filler.model)
    archive.track(filler.prepared)
    archive.add_endpoint(
        "serve",
        serving_function(filler, chunk_size),
        input_signature=[tf.TensorSpec([None], tf.string, name="text")],
    )
    with writing(path, errors=(tf.errors.OpError,)):
        archive.write_out(str(path), verbose=False)
