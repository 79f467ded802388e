"""The SavedModel export: the serving function (raw strings in, tokens, tags, offsets
and probabilities out) and the archive that TensorFlow Serving, KServe and
`saved_model_cli run` load."""

from __future__ import annotations

import os

import keras
import tensorflow as tf

from slotkeras.decoding import SERVE_CHUNK, decode_in_chunks


def serving_function(filler, chunk_size: int = SERVE_CHUNK):
    """The SavedModel's `serve`: a 1-D string tensor of raw utterances to `tokens`,
    `tags` (2-D strings padded with ""), `starts`/`ends` (code point offsets, -1
    on padding), `tag_probabilities` (0 on padding) and, with intents, `intent`
    and `intent_probability`. `SlotFiller.tag_text` runs the same function."""
    tokenizer, tag_names, intent_names = filler.tokenizer, filler.tags, filler.intents
    decode = filler.decode

    def serve(text):
        pieces = tokenizer.tokenize(text)
        tokens, split_marks = pieces["tokens"], pieces["split_marks"]
        tag_ids, tag_probs, intent_ids, intent_probs = tf.cond(
            tf.shape(tokens)[0] > chunk_size,
            lambda: decode_in_chunks(decode, tokens, split_marks, chunk_size),
            lambda: decode(tokens, split_marks),
        )
        padding = tf.equal(tokens, "")
        # Names as graph constants, created in the trace: nothing to restore.
        tags = tf.where(padding, "", tf.gather(tf.constant(tag_names), tag_ids))
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
    run in the graph; batches of more than `chunk_size` utterances run in chunks of
    similar length.

    It is written through Keras's export API, which saves the variables the way a
    session restores them: TensorFlow Serving, KServe and `saved_model_cli run`
    load it as well as `tf.saved_model.load` does."""
    archive = keras.export.ExportArchive()
    archive.track(filler.model)
    archive.track(filler.prepared)
    archive.add_endpoint(
        "serve",
        serving_function(filler, chunk_size),
        input_signature=[tf.TensorSpec([None], tf.string, name="text")],
    )
    archive.write_out(str(path), verbose=False)
