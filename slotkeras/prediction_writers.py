"""Predictions written as they come, for a person or for the annotation tool.

`PredictionWriter(stream, format, model_version)` writes batches of predictions
(`slotkeras.slot_filler.Prediction`, or anything with its `text`, `tokens`, `tags`,
`starts`, `ends`, `intent`, `spans()` and `to_json()`) to an open text stream and
flushes after each batch, so output appears while a large file is tagged:

- `jsonl`: one JSON object a line, what `predict` prints for typed utterances;
- `label_studio`: a JSON list of tasks to import, each with its text and a
  pre-annotation in `predictions` (`result[]` with `value.start/end/text/labels`
  and a `score` per span, a `score` per prediction, `model_version`);
- `rasa`: Rasa NLU YAML, the predicted slots in inline markup under each run of
  one intent;
- `conll`: token and tag a line (a `# intent = NAME` line first), a blank line between.

An empty utterance (an empty line of a text file) is a JSON line like any other, and
is left out of the other formats.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from slotkeras.corpus_writers import label_studio_result
from slotkeras.markup import render_markup
from slotkeras.rasa_yaml import quoted_name
from slotkeras.span_alignment import Span, spans_of

PREDICTION_FORMATS = ("jsonl", "label_studio", "rasa", "conll")


def model_version(folder) -> str:
    """The model folder's name and a short digest of what it holds: its manifest (which
    lists every file's SHA-256) if it has one, else its model.keras."""
    folder = Path(folder)
    source = folder / "manifest.json"
    if not source.is_file():
        source = folder / "model.keras"
    digest = hashlib.sha256()
    with open(source, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"{folder.resolve().name}-{digest.hexdigest()[:12]}"


def decision_confidences(prediction) -> list[float]:
    """The model's confidence in each decision it made of an utterance: each span's
    confidence, each token outside a span's probability of "O", the intent's
    probability."""
    scores = [span["confidence"] for span in prediction.spans(exact=True)]
    probabilities = prediction.tag_probabilities or []
    scores += [p for p, tag in zip(probabilities, prediction.tags) if tag == "O"]
    if prediction.intent_probability is not None:
        scores.append(float(prediction.intent_probability))
    return scores


def utterance_score(prediction) -> float:
    """How sure the model is of a whole utterance: the lowest of its
    `decision_confidences`; 1 for an empty utterance."""
    scores = decision_confidences(prediction)
    return float(min(scores)) if scores else 1.0


class PredictionWriter:
    """Writes predictions in `format` to `stream`, a batch at a time.

    Args:
        stream: an open text stream (stdout, a file).
        format: one of `PREDICTION_FORMATS`.
        model_version: what Label Studio shows as the predictions' model.

    Call `write(predictions)` for each batch and `close()` at the end (it ends the
    Label Studio list; the stream stays open)."""

    def __init__(self, stream, format: str = "jsonl", model_version: str = ""):
        if format not in PREDICTION_FORMATS:
            raise ValueError(
                "Received an invalid value for argument `format`, expected one of "
                f"{', '.join(PREDICTION_FORMATS)}, got {format!r}."
            )
        self.stream = stream
        self.format = format
        self.model_version = model_version
        self.count = 0
        self._intent = ()  # the intent of the Rasa run being written

    def write(self, predictions) -> None:
        chunks = []
        for prediction in predictions:
            if not prediction.tokens and self.format != "jsonl":
                continue  # an empty line: no task, example or sentence to write
            chunks.append(getattr(self, "_" + self.format)(prediction))
            self.count += 1
        self.stream.write("".join(chunks))
        self.stream.flush()

    def close(self) -> None:
        if self.format == "label_studio":
            self.stream.write("[]\n" if self.count == 0 else "\n]\n")
        elif self.format == "rasa" and self.count == 0:
            self.stream.write('version: "3.1"\nnlu: []\n')
        self.stream.flush()

    def _jsonl(self, prediction) -> str:
        return json.dumps(prediction.to_json(), ensure_ascii=False) + "\n"

    def _label_studio(self, prediction) -> str:
        scores = [round(span["confidence"], 4) for span in prediction.spans(exact=True)]
        task = {
            "data": {"text": prediction.text},
            "predictions": [
                {
                    "model_version": self.model_version,
                    "score": round(utterance_score(prediction), 4),
                    "result": label_studio_result(prediction, scores),
                }
            ],
        }
        opening = "[\n" if self.count == 0 else ",\n"
        return opening + json.dumps(task, ensure_ascii=False)

    def _rasa(self, prediction) -> str:
        out = 'version: "3.1"\nnlu:\n' if self.count == 0 else ""
        if prediction.intent != self._intent:
            self._intent = prediction.intent
            if prediction.intent is None:
                out += "- examples: |\n"
            else:
                out += f"- intent: {quoted_name(prediction.intent)}\n  examples: |\n"
        text = " ".join(prediction.text.split())  # one line; the spans move with it
        if text != prediction.text:
            return out + f"    - {render_markup(*_one_line(prediction))}\n"
        return out + f"    - {render_markup(prediction.text, spans_of(prediction))}\n"

    def _conll(self, prediction) -> str:
        lines = [f"# intent = {prediction.intent}"] if prediction.intent is not None else []
        lines += [f"{t} {tag}" for t, tag in zip(prediction.tokens, prediction.tags)]
        return "\n".join(lines) + "\n\n"


def _one_line(prediction):
    """The prediction's text with each run of whitespace one space (a line of Rasa
    markup holds no line break), and its spans moved to match."""
    text, positions, previous_space = [], [], False
    for char in prediction.text.strip():
        positions.append(len(text))
        if char.isspace():
            if not previous_space:
                text.append(" ")
            previous_space = True
            continue
        text.append(char)
        previous_space = False
    start = len(prediction.text) - len(prediction.text.lstrip())
    positions.append(len(text))
    spans = [
        Span(positions[s.start - start], positions[s.end - start], s.slot)
        for s in spans_of(prediction)
    ]
    return "".join(text), spans
