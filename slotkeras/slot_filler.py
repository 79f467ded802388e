"""A trained model folder, loaded for tagging: `SlotFiller` tags pre-tokenized
utterances or raw text (with the SavedModel's own graph), and `Prediction` holds one
tagged utterance with its spans."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import slotkeras.layers  # noqa: F401  (registers every saveable layer)
import slotkeras.optimizers  # noqa: F401  (Keras reads the compile config too)
from slotkeras.datasets import pad_tokens
from slotkeras.decoding import SERVE_LENGTH, chunk_bounds, make_decoder
from slotkeras.layers.prepared import PreparedWeights
from slotkeras.model_folder import ModelFolderError, read_model_folder
from slotkeras.saved_model_export import serving_function
from slotkeras.tag_schemes import iob_spans, output_tag
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
    together (docs/experiments/span_confidence.md): the product, and less so the smallest, fall
    too low on long spans, whose tokens' marginals are not independent."""
    values = [float(p) for p in tag_probabilities]
    return sum(values) / len(values)  # plain Python: numpy's call costs more on a few


class SlotFiller:
    """A trained slot filler: the end-to-end Keras model, its label names and the
    tokenizer of its training data."""

    def __init__(self, model: keras.Model, tags: list[str], intents: list[str], config: dict):
        """`tags`: the model's own tags, id by id (BIO, or BIOES when trained so)."""
        self.model = model
        self.model_tags = list(tags)
        # What each tag id answers: BIO, the scheme of the training data.
        self.tags = [output_tag(tag) for tag in self.model_tags]
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
        pre-tokenized utterance, in order: in batches of `batch_size` sorted by length,
        fewer where utterances longer than `SERVE_LENGTH` tokens would pad to more."""
        lengths = [len(t) for t in token_lists]
        order = np.argsort(lengths, kind="stable")
        tag_ids = [None] * len(token_lists)
        tag_probs = [None] * len(token_lists)
        intent_ids = np.zeros(len(token_lists), np.int64)
        intent_probs = np.ones(len(token_lists), np.float32)
        sorted_lengths = [lengths[i] for i in order]
        for start, end in chunk_bounds(sorted_lengths, batch_size, batch_size * SERVE_LENGTH):
            chunk = order[start:end]
            padded = pad_tokens([token_lists[i] for i in chunk]).astype(str)
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
            out += self.text_predictions(chunk, self.serve_text(chunk))
        return out

    def serve_text(self, texts: list[str]) -> dict[str, np.ndarray]:
        """The serving graph's outputs for a batch of raw utterances (the first half
        of `tag_text`, which runs without holding Python's GIL)."""
        return {k: v.numpy() for k, v in self._serve(tf.constant(texts, tf.string)).items()}

    def text_predictions(self, texts: list[str], served: dict) -> list[Prediction]:
        """`serve_text`'s outputs for `texts`, one `Prediction` an utterance."""
        out = []
        widths = (served["tokens"] != b"").sum(axis=1).tolist()
        for row, (text, width) in enumerate(zip(texts, widths)):
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
