"""A trained model folder, loaded for tagging; and the SavedModel export."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from slotkeras import features
from slotkeras.data import iob_spans
from slotkeras.model_folder import ModelFolderError, read_model_folder


@dataclass
class Prediction:
    tokens: list[str]
    tags: list[str]
    intent: str | None = None
    intent_probability: float | None = None

    def to_json(self, text: str | None = None) -> dict:
        out = {"text": text if text is not None else " ".join(self.tokens)}
        if self.intent is not None:
            out["intent"] = self.intent
            out["intent_probability"] = round(float(self.intent_probability), 4)
        out["slots"] = [
            {"slot": slot, "value": " ".join(self.tokens[start:end]), "start": start, "end": end}
            for slot, start, end in iob_spans(self.tags)
        ]
        return out


def find_crf(model: keras.Model):
    """The CRF layer of a tagger (or of an end-to-end model around one), or None."""
    from slotkeras.layers.crf import CRF

    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, CRF):
            return layer
    return None


def make_decoder(model: keras.Model, num_intents: int):
    """A function from model inputs to (tag ids, intent ids, intent probabilities):
    Viterbi decoding with a CRF output, the most likely tag per token otherwise.

    `model` is either the id-level tagger (inputs a dict of ids) or the end-to-end
    model (inputs string tokens); the mask comes from the inputs' padding."""
    crf = find_crf(model)

    def decode(inputs):
        outputs = model(inputs, training=False)
        if isinstance(inputs, dict):
            mask = tf.greater(inputs["word_ids"], 0)
        else:
            mask = tf.not_equal(inputs, "")
        slots = outputs["slots"]
        if crf is not None:
            tag_ids = crf.decode(slots, mask)
        else:
            tag_ids = tf.argmax(slots, axis=-1, output_type=tf.int32)
        tag_ids = tf.where(mask, tag_ids, tf.zeros_like(tag_ids))
        if num_intents:
            probs = outputs["intent"]
            return (
                tag_ids,
                tf.argmax(probs, axis=-1, output_type=tf.int32),
                tf.reduce_max(probs, axis=-1),
            )
        batch = tf.shape(tag_ids)[0]
        return tag_ids, tf.zeros([batch], tf.int32), tf.ones([batch], tf.float32)

    return decode


class SlotFiller:
    """A trained slot filler: the end-to-end Keras model and its label names."""

    def __init__(self, model: keras.Model, tags: list[str], intents: list[str], config: dict):
        self.model = model
        self.tags = list(tags)
        self.intents = list(intents)
        self.config = config
        decode = make_decoder(model, len(self.intents))
        self._decode = tf.function(
            decode,
            input_signature=[tf.TensorSpec([None, None], tf.string)],
            reduce_retracing=True,
        )

    @classmethod
    def load(cls, folder: str | os.PathLike) -> SlotFiller:
        folder = Path(folder)
        tags, intents, config = read_model_folder(folder)
        import slotkeras.layers.crf  # noqa: F401  (registers the custom layers)
        import slotkeras.models  # noqa: F401

        try:
            model = keras.models.load_model(folder / "model.keras", compile=False)
        except Exception as error:  # noqa: BLE001 - any failure means a broken file
            text = str(error).strip()
            first = text.splitlines()[0] if text else type(error).__name__
            raise ModelFolderError(
                f"{folder / 'model.keras'}: cannot be loaded ({first})"
            ) from None
        outputs = model.output if isinstance(model.output, dict) else {}
        shapes = {
            "tags": tuple(outputs["slots"].shape)[-1] if "slots" in outputs else None,
            "intents": tuple(outputs["intent"].shape)[-1] if "intent" in outputs else 0,
        }
        for key, names in (("tags", tags), ("intents", intents)):
            width = shapes[key]
            if width is not None and width != len(names):
                raise ModelFolderError(
                    f"{folder / 'labels.json'}: {len(names)} {key} but model.keras predicts "
                    f"{width}: the files come from different models"
                )
        return cls(model, tags, intents, config)

    def predict_ids(self, token_lists, batch_size: int = 256):
        """Tag ids, intent ids and intent probabilities for each utterance, in order."""
        order = np.argsort([len(t) for t in token_lists], kind="stable")
        tag_ids = [None] * len(token_lists)
        intent_ids = np.zeros(len(token_lists), np.int64)
        intent_probs = np.ones(len(token_lists), np.float32)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            padded = features.pad_tokens([token_lists[i] for i in chunk]).astype(str)
            tags, intents, probs = self._decode(tf.constant(padded))
            tags = tags.numpy()
            for row, i in enumerate(chunk):
                tag_ids[i] = tags[row, : len(token_lists[i])]
            intent_ids[chunk] = intents.numpy()
            intent_probs[chunk] = probs.numpy()
        return tag_ids, intent_ids, intent_probs

    def predict(self, token_lists, batch_size: int = 256) -> list[Prediction]:
        tag_ids, intent_ids, intent_probs = self.predict_ids(token_lists, batch_size)
        out = []
        for tokens, ids, intent, prob in zip(
            token_lists, tag_ids, intent_ids, intent_probs, strict=True
        ):
            out.append(
                Prediction(
                    tokens=list(tokens),
                    tags=[self.tags[i] for i in ids],
                    intent=self.intents[intent] if self.intents else None,
                    intent_probability=float(prob) if self.intents else None,
                )
            )
        return out


# Batches of more than this many utterances are served in chunks of this many,
# sorted by length, each padded to its own longest utterance rather than the batch's.
SERVE_CHUNK = 32


def decode_in_chunks(decode, tokens, chunk_size: int):
    """`decode(tokens)` (a `make_decoder` function) computed on chunks of
    `chunk_size` utterances of similar length, each cut to its own longest
    utterance, and put back in the input's order and width. The same results: the
    model masks padding. Compute grows with rows x time steps, and in a batch of
    random utterances most steps are padding (ATIS test, batches of 256: 2.2x fewer
    steps with chunks of 32, 1.9x with 64)."""
    lengths = tf.reduce_sum(tf.cast(tf.not_equal(tokens, ""), tf.int32), axis=1)
    order = tf.argsort(lengths, stable=True)
    sorted_tokens = tf.gather(tokens, order)
    sorted_lengths = tf.gather(lengths, order)
    batch, width = tf.shape(tokens)[0], tf.shape(tokens)[1]
    chunks = (batch + chunk_size - 1) // chunk_size
    arrays = (
        tf.TensorArray(tf.int32, size=chunks, infer_shape=False, element_shape=[None, None]),
        tf.TensorArray(tf.int32, size=chunks, infer_shape=False, element_shape=[None]),
        tf.TensorArray(tf.float32, size=chunks, infer_shape=False, element_shape=[None]),
    )

    def body(i, arrays):
        start = i * chunk_size
        end = tf.minimum(start + chunk_size, batch)
        steps = tf.maximum(tf.reduce_max(sorted_lengths[start:end]), 1)
        outputs = decode(sorted_tokens[start:end, :steps])
        tag_ids = tf.pad(outputs[0], [[0, 0], [0, width - steps]])
        outputs = (tag_ids, *outputs[1:])
        return i + 1, tuple(a.write(i, o) for a, o in zip(arrays, outputs, strict=True))

    _, arrays = tf.while_loop(lambda i, _: i < chunks, body, (0, arrays))
    restore = tf.math.invert_permutation(order)
    return tuple(tf.gather(a.concat(), restore) for a in arrays)


class _Serving(tf.Module):
    """What the SavedModel holds: the end-to-end model, label names and `serve`."""

    def __init__(self, filler: SlotFiller, chunk_size: int = SERVE_CHUNK):
        super().__init__()
        self.model = filler.model
        self.tag_names = tf.constant(filler.tags)
        self.intent_names = tf.constant(filler.intents or [""])
        self.has_intent = bool(filler.intents)
        self._decode = make_decoder(filler.model, len(filler.intents))
        self._chunk_size = chunk_size

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(self, text):
        tokens = features.tokenize(text)
        tag_ids, intent_ids, intent_probs = tf.cond(
            tf.shape(tokens)[0] > self._chunk_size,
            lambda: decode_in_chunks(self._decode, tokens, self._chunk_size),
            lambda: self._decode(tokens),
        )
        tags = tf.where(tf.equal(tokens, ""), "", tf.gather(self.tag_names, tag_ids))
        outputs = {"tokens": tokens, "tags": tags}
        if self.has_intent:
            outputs["intent"] = tf.gather(self.intent_names, intent_ids)
            outputs["intent_probability"] = intent_probs
        return outputs


def export_saved_model(
    filler: SlotFiller, path: str | os.PathLike, chunk_size: int = SERVE_CHUNK
) -> None:
    """Writes a SavedModel whose signature `serve` (also `serving_default`) takes a
    1-D string tensor of raw utterances and returns `tokens`, `tags` (2-D strings,
    padded with "") and, with intents, `intent` and `intent_probability`.
    Tokenization, lexicon lookup, hashing and decoding all run in the graph; batches
    of more than `chunk_size` utterances run in chunks of similar length."""
    module = _Serving(filler, chunk_size)
    serve = module.serve.get_concrete_function()
    tf.saved_model.save(module, str(path), signatures={"serving_default": serve, "serve": serve})
