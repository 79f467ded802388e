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
from slotkeras.layers.prepared import PreparedWeights
from slotkeras.model_folder import ModelFolderError, read_model_folder
from slotkeras.tokenizer import Tokenizer


@dataclass
class Prediction:
    """One tagged utterance: its tokens with their tags, the probability of each
    decoded tag and each token's code point offsets in `text`."""

    tokens: list[str]
    tags: list[str]
    tag_probabilities: list[float] | None = None
    text: str | None = None
    starts: list[int] | None = None
    ends: list[int] | None = None
    intent: str | None = None
    intent_probability: float | None = None

    def __post_init__(self):
        if self.text is None or self.starts is None:
            # Pre-tokenized input: the tokens joined by single spaces.
            self.text = " ".join(self.tokens)
            self.starts, position = [], 0
            for token in self.tokens:
                self.starts.append(position)
                position += len(token) + 1
            self.ends = [s + len(t) for s, t in zip(self.starts, self.tokens)]

    def spans(self, exact: bool = False) -> list[dict]:
        """The slots: `value` is the input's own substring from `start` to `end`
        (code points), `token_start`/`token_end` the tokens it covers (end
        exclusive), `confidence` the span's (see `span_confidence`), rounded to 4
        places unless `exact`."""
        out = []
        for slot, first, last in iob_spans(self.tags):
            start, end = self.starts[first], self.ends[last - 1]
            span = {"slot": slot, "value": self.text[start:end], "start": start, "end": end}
            span.update(token_start=first, token_end=last)
            if self.tag_probabilities is not None:
                probabilities = self.tag_probabilities[first:last]
                confidence = span_confidence(probabilities)
                span["confidence"] = confidence if exact else round(confidence, 4)
            out.append(span)
        return out

    def to_json(self) -> dict:
        out = {"text": self.text}
        if self.intent is not None:
            out["intent"] = self.intent
            out["intent_probability"] = round(float(self.intent_probability), 4)
        out["slots"] = self.spans()
        return out


def span_confidence(tag_probabilities) -> float:
    """A span's confidence from its tokens' tag probabilities (CRF marginals or
    softmax probabilities): their mean. Of the mean, the smallest and the product,
    the mean was the best calibrated on the ATIS and resume_ner validation splits
    together (docs/benchmarks.md): the product, and less so the smallest, fall
    too low on long spans, whose tokens' marginals are not independent."""
    return float(np.mean(tag_probabilities))


def find_crf(model: keras.Model):
    """The CRF layer of a tagger (or of an end-to-end model around one), or None."""
    from slotkeras.layers.crf import CRF

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


class SlotFiller:
    """A trained slot filler: the end-to-end Keras model, its label names and the
    tokenizer of its training data."""

    def __init__(self, model: keras.Model, tags: list[str], intents: list[str], config: dict):
        """`tags`: the model's own tags, id by id (BIO, or BIOES when trained so)."""
        self.model = model
        self.model_tags = list(tags)
        # What each tag id answers: BIO, the scheme of the training data.
        self.tags = [features.output_tag(tag) for tag in self.model_tags]
        self.intents = list(intents)
        self.config = config
        self.tokenizer = Tokenizer.from_config(config.get("tokenizer"))
        # Weights in the layouts inference reads, laid out once from the trained
        # weights (a model trained on afterwards needs a new SlotFiller).
        self.prepared = PreparedWeights(model)
        decode = make_decoder(
            model, len(self.intents), probabilities=True, outside=self.tokenizer.unseen_marks
        )

        def prepared_decode(tokens, split_marks=None):
            with self.prepared.scope():
                return decode(tokens, split_marks)

        # The decoder of pre-tokenized input and of the serving function alike.
        self.decode = prepared_decode
        self._decode = tf.function(
            self.decode,
            input_signature=[tf.TensorSpec([None, None], tf.string)],
            reduce_retracing=True,
        )
        self._serve = tf.function(
            serving_function(self), input_signature=[tf.TensorSpec([None], tf.string)]
        )

    @classmethod
    def load(cls, folder: str | os.PathLike) -> SlotFiller:
        folder = Path(folder)
        tags, intents, config = read_model_folder(folder)
        import slotkeras.layers.crf  # noqa: F401  (registers the custom layers)
        import slotkeras.models  # noqa: F401
        import slotkeras.optimizers  # noqa: F401  (Keras reads the compile config too)

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
        """Tag ids, tag probabilities, intent ids and intent probabilities for each
        pre-tokenized utterance, in order."""
        order = np.argsort([len(t) for t in token_lists], kind="stable")
        tag_ids = [None] * len(token_lists)
        tag_probs = [None] * len(token_lists)
        intent_ids = np.zeros(len(token_lists), np.int64)
        intent_probs = np.ones(len(token_lists), np.float32)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            padded = features.pad_tokens([token_lists[i] for i in chunk]).astype(str)
            tags, probs, intents, intent_prob = (x.numpy() for x in self._decode(padded))
            for row, i in enumerate(chunk):
                tag_ids[i] = tags[row, : len(token_lists[i])]
                tag_probs[i] = probs[row, : len(token_lists[i])]
            intent_ids[chunk] = intents
            intent_probs[chunk] = intent_prob
        return tag_ids, tag_probs, intent_ids, intent_probs

    def predict(self, token_lists, batch_size: int = 256) -> list[Prediction]:
        """Tags pre-tokenized utterances (lists of tokens), as in a corpus."""
        tag_ids, tag_probs, intent_ids, intent_probs = self.predict_ids(token_lists, batch_size)
        return [
            Prediction(
                tokens=list(tokens),
                tags=[self.tags[i] for i in ids],
                tag_probabilities=[float(p) for p in probs],
                intent=self.intents[intent] if self.intents else None,
                intent_probability=float(prob) if self.intents else None,
            )
            for tokens, ids, probs, intent, prob in zip(
                token_lists, tag_ids, tag_probs, intent_ids, intent_probs, strict=True
            )
        ]

    def tag_text(self, texts: list[str], batch_size: int = 256) -> list[Prediction]:
        """Tags raw utterances as typed, with the SavedModel's own graph: the same
        tokenizer, tags, probabilities and offsets."""
        out = []
        for start in range(0, len(texts), batch_size):
            chunk = list(texts[start : start + batch_size])
            served = {k: v.numpy() for k, v in self._serve(tf.constant(chunk, tf.string)).items()}
            for row, text in enumerate(chunk):
                width = int(np.sum(served["tokens"][row] != b""))
                out.append(
                    Prediction(
                        tokens=[t.decode("utf-8") for t in served["tokens"][row, :width]],
                        tags=[t.decode("utf-8") for t in served["tags"][row, :width]],
                        tag_probabilities=served["tag_probabilities"][row, :width].tolist(),
                        text=text,
                        starts=served["starts"][row, :width].tolist(),
                        ends=served["ends"][row, :width].tolist(),
                        intent=served["intent"][row].decode("utf-8") if self.intents else None,
                        intent_probability=(
                            float(served["intent_probability"][row]) if self.intents else None
                        ),
                    )
                )
        return out


# Batches of more than this many utterances are served in chunks of this many,
# sorted by length, each padded to its own longest utterance rather than the batch's.
# Smaller chunks pad less, larger ones run the per-step ops of the LSTM and CRF loops
# fewer times; with the marginals' ops in the CRF loop, 64 served batches of 256
# faster than 32 or 128 (docs/benchmarks.md).
SERVE_CHUNK = 64


def decode_in_chunks(decode, tokens, split_marks, chunk_size: int):
    """`decode(tokens, split_marks)` (a `make_decoder` function with probabilities) computed on
    chunks of `chunk_size` utterances of similar length, each cut to its own
    longest utterance, and put back in the input's order and width. The same
    results: the model masks padding. Compute grows with rows x time steps, and in
    a batch of random utterances most steps are padding."""
    lengths = tf.reduce_sum(tf.cast(tf.not_equal(tokens, ""), tf.int32), axis=1)
    order = tf.argsort(lengths, stable=True)
    sorted_tokens = tf.gather(tokens, order)
    sorted_marks = tf.gather(split_marks, order)
    sorted_lengths = tf.gather(lengths, order)
    batch, width = tf.shape(tokens)[0], tf.shape(tokens)[1]
    chunks = (batch + chunk_size - 1) // chunk_size
    arrays = tuple(
        tf.TensorArray(dtype, size=chunks, infer_shape=False, element_shape=[None] * rank)
        for dtype, rank in DECODED
    )

    def body(i, arrays):
        start = i * chunk_size
        end = tf.minimum(start + chunk_size, batch)
        steps = tf.maximum(tf.reduce_max(sorted_lengths[start:end]), 1)
        outputs = decode(sorted_tokens[start:end, :steps], sorted_marks[start:end, :steps])
        outputs = tuple(
            tf.pad(o, [[0, 0], [0, width - steps]]) if rank == 2 else o
            for o, (_, rank) in zip(outputs, DECODED, strict=True)
        )
        return i + 1, tuple(a.write(i, o) for a, o in zip(arrays, outputs, strict=True))

    _, arrays = tf.while_loop(lambda i, _: i < chunks, body, (0, arrays))
    restore = tf.math.invert_permutation(order)
    return tuple(tf.gather(a.concat(), restore) for a in arrays)


def serving_function(filler: SlotFiller, chunk_size: int = SERVE_CHUNK):
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


def export_saved_model(
    filler: SlotFiller, path: str | os.PathLike, chunk_size: int = SERVE_CHUNK
) -> None:
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
