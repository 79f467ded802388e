"""Readers of the formats annotation tools export: spans over raw text.

- `jsonl`, one object a line (Doccano, spaCy, Prodigy): `{"text": ..., "spans":
  [[start, end, "slot"], ...], "intent": ...}`; `entities` or `label` in place of
  `spans`, and `{"start", "end", "label"}` objects (Doccano's `start_offset` and
  `end_offset` too) in place of lists. A record's `tokens` (`[{"text", "start",
  "end"}, ...]`, as spaCy and Prodigy write them) are its tokens; otherwise the
  text is tokenized. Prodigy's records answered `reject` or `ignore` are left out.
- `label_studio`, Label Studio's JSON export: a list of tasks, each with `data.text`
  and `annotations[].result[]`; a `labels` result (`value.start`, `value.end`,
  `value.text`, `value.labels`) is a slot, a `choices` result the intent. The latest
  annotation that was not cancelled counts; a task with none is left out (reported).
  Offsets counted in UTF-16 units, as a browser counts them, are recognized by
  `value.text` and read as code points.

Inline markup (CSV, Markdown) is read by slotkeras.markup, Rasa's YAML by
slotkeras.rasa_yaml. Every reader turns its spans into BIO tags with
slotkeras.span_alignment, so the utterances are the ones their BIO form gives.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from slotkeras.raw_text import NAMED_RULES, TextRules
from slotkeras.span_alignment import Place, Span, utterance_from_spans
from slotkeras.text_files import MISSING, all_or_none, json_line, read_text, split_lines
from slotkeras.utterance import DataError

_SPAN_KEYS = ("spans", "entities", "label")


def text_rules(spec) -> TextRules:
    """The tokenizer rules a `text_tokenizer` setting names: `words` (the readers'
    default: marks split off, CJK a character a token), `characters`, a JSON object
    of `TextRules` fields, a JSON file of them, or a model folder (its tokenizer)."""
    if isinstance(spec, TextRules):
        return spec
    if spec in NAMED_RULES:
        return NAMED_RULES[spec]
    text = spec.strip()
    source = spec
    if not text.startswith("{"):
        path = Path(spec)
        if path.is_dir():
            path = path / "config.json"
        if not path.is_file():
            raise DataError(
                spec, "not a tokenizer: expected words, characters, a JSON file of rules "
                "or a model folder"
            )  # fmt: skip
        text, source = read_text(path), path
    try:
        rules = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(source, f"tokenizer rules are not JSON ({error.msg})") from None
    if isinstance(rules, dict) and isinstance(rules.get("tokenizer"), dict):
        rules = rules["tokenizer"]  # a model folder's config.json
    known = {"characters", "cjk_characters", "keep", "marks"}
    if not isinstance(rules, dict) or set(rules) - known:
        raise DataError(source, f"tokenizer rules: expected an object of {sorted(known)}")
    return TextRules.from_config(rules)


# --------------------------------------------------------------------------
# JSONL
# --------------------------------------------------------------------------


def read_jsonl(path, text, *, text_column, intent_column, require_tags, **options):
    """Utterances of a JSONL file of spans. `options`: `rules`, `misaligned` and
    `report`, as `utterance_from_spans` takes them."""
    records = []  # (line, record)
    for number, line in enumerate(split_lines(text), start=1):
        record = json_line(path, number, line)
        if record is None:
            continue
        answer = record.get("answer", "accept")
        if answer != "accept":
            report = options.get("report")
            if report is not None:
                report.add(Place(path, number).line(f"answered {answer!r}: left out"))
            continue
        records.append((number, record))
    if not records:
        raise DataError(path, "no records")
    has_spans = [any(key in record for key in _SPAN_KEYS) for _, record in records]
    if require_tags and not all(has_spans):
        line = records[has_spans.index(False)][0]
        keys = ", ".join(_SPAN_KEYS)
        raise DataError(path, f"no spans (expected one of {keys})", row=line, unit="line")
    intents = [_jsonl_intent(path, n, r, intent_column) for n, r in records]
    intents = all_or_none(
        path, intents, [n for n, _ in records], "line", f"no {intent_column}", "an intent"
    )
    utterances = []
    for (number, record), intent in zip(records, intents, strict=True):
        place = Place(path, number, "line")
        value = record.get(text_column)
        if not isinstance(value, str):
            raise place.error(f"no {text_column!r} string (got {_kind(value)})")
        spans = _jsonl_spans(record, place)
        tokens = _jsonl_tokens(value, record.get("tokens"), place)
        utterance = utterance_from_spans(value, spans, intent, place, tokens=tokens, **options)
        if not any(has_spans):
            utterance = dataclasses.replace(utterance, tags=None)
        utterances.append(utterance)
    return utterances


def _jsonl_intent(path, number, record, intent_column):
    intent = record.get(intent_column)
    if intent is None:
        return MISSING
    if not isinstance(intent, str) or not intent.strip() or intent != intent.strip():
        raise DataError(
            path, f"{intent_column} {intent!r}: expected a name", row=number, unit="line"
        )
    return intent


def _jsonl_spans(record, place) -> list[Span]:
    key = next((k for k in _SPAN_KEYS if k in record), None)
    if key is None:
        return []
    items = record[key]
    if not isinstance(items, list):
        raise place.error(f"{key}: expected a list of spans, got {_kind(items)}")
    spans = []
    for item in items:
        if isinstance(item, (list, tuple)) and len(item) == 3:
            spans.append(Span(*item))
        elif isinstance(item, dict):
            start = item.get("start", item.get("start_offset"))
            end = item.get("end", item.get("end_offset"))
            spans.append(Span(start, end, item.get("label")))
        else:
            raise place.error(
                f"{key}: expected [start, end, label] or {{start, end, label}}, got {item!r}"
            )
    return spans


def _jsonl_tokens(text, tokens, place):
    """`(token, start, end)` triples of a record's `tokens`, checked against its text."""
    if tokens is None:
        return None
    if not isinstance(tokens, list) or not tokens:
        raise place.error(f"tokens: expected a list of {{text, start, end}}, got {tokens!r}")
    out, previous_end = [], 0
    for number, token in enumerate(tokens, start=1):
        if not isinstance(token, dict):
            raise place.error(f"token {number}: expected {{text, start, end}}, got {token!r}")
        value, start, end = token.get("text"), token.get("start"), token.get("end")
        if (
            not isinstance(start, int)
            or not isinstance(end, int)
            or not previous_end <= start < end <= len(text)
            or text[start:end] != value
            or value.split() != [value]
        ):
            raise place.error(
                f"token {number} {value!r} at {start}-{end} is not a word of the text there"
            )
        out.append((value, start, end))
        previous_end = end
    return out


def _kind(value) -> str:
    return "nothing" if value is None else type(value).__name__


# --------------------------------------------------------------------------
# Label Studio
# --------------------------------------------------------------------------


def read_label_studio(path, text, *, text_column, require_tags, **options):
    """Utterances of a Label Studio JSON export. `options`: `rules`, `misaligned`
    and `report`, as `utterance_from_spans` takes them."""
    try:
        tasks = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(path, f"not JSON ({error.msg})", row=error.lineno, unit="line") from None
    if not isinstance(tasks, list):
        raise DataError(path, "expected a list of Label Studio tasks (its JSON export)")
    read = []  # (task number, utterance, intent)
    for number, task in enumerate(tasks, start=1):
        place = Place(path, number, "task")
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            raise place.error("expected a task with a 'data' object")
        value = task["data"].get(text_column)
        if not isinstance(value, str):
            raise place.error(f"data has no {text_column!r} string (got {_kind(value)})")
        annotation = _latest_annotation(task, place)
        if annotation is None and require_tags:
            report = options.get("report")
            if report is not None:
                report.add(place.line("no annotation that was not cancelled: left out"))
            continue
        spans, intent = _results(value, annotation, place) if annotation else ([], MISSING)
        utterance = utterance_from_spans(value, spans, None, place, **options)
        if annotation is None:
            utterance = dataclasses.replace(utterance, tags=None)
        read.append((number, utterance, intent))
    if not read:
        raise DataError(path, "no annotated tasks")
    intents = all_or_none(
        path, [i for _, _, i in read], [n for n, _, _ in read], "task", "no intent", "one"
    )
    return [
        dataclasses.replace(u, intent=i) if i is not None else u
        for (_, u, _), i in zip(read, intents, strict=True)
    ]


def _latest_annotation(task, place):
    """The task's latest annotation that was not cancelled (by its update or creation
    time, else its place in the list), or None."""
    annotations = task.get("annotations", task.get("completions", []))
    if not isinstance(annotations, list):
        raise place.error("annotations: expected a list")
    chosen, latest = None, None
    for index, annotation in enumerate(annotations):
        if not isinstance(annotation, dict) or not isinstance(annotation.get("result"), list):
            raise place.error(f"annotation {index + 1}: expected an object with a result list")
        if annotation.get("was_cancelled"):
            continue
        when = str(annotation.get("updated_at") or annotation.get("created_at") or "")
        if latest is None or (when, index) >= latest:
            chosen, latest = annotation, (when, index)
    return chosen


def _results(text, annotation, place):
    """The spans and the intent (or MISSING) of an annotation's results."""
    spans, intents = [], []
    for result in annotation["result"]:
        value = result.get("value") if isinstance(result, dict) else None
        kind = result.get("type") if isinstance(result, dict) else None
        if kind == "labels" and isinstance(value, dict):
            spans.append(_label_span(text, value, place))
        elif kind == "choices" and isinstance(value, dict):
            choices = value.get("choices")
            if not isinstance(choices, list) or len(choices) != 1:
                raise place.error(f"choices {choices!r}: expected one intent")
            intents.append(choices[0])
    if len(intents) > 1:
        raise place.error(f"{len(intents)} choices results {intents!r}: expected one intent")
    return spans, (intents[0] if intents else MISSING)


def _label_span(text, value, place) -> Span:
    labels = value.get("labels")
    if not isinstance(labels, list) or len(labels) != 1:
        raise place.error(f"labels {labels!r}: expected one slot per span")
    start, end, said = value.get("start"), value.get("end"), value.get("text")
    if isinstance(said, str) and isinstance(start, int) and isinstance(end, int):
        if text[start:end] != said:
            start, end = _from_utf16(text, start, end, said, place)
    return Span(start, end, labels[0])


def _from_utf16(text, start, end, said, place):
    """Offsets a browser counted in UTF-16 units, as code points (when the text there
    is what the annotation says)."""
    units = text.encode("utf-16-le")
    if 0 <= start <= end <= len(units) // 2:
        before = units[: 2 * start].decode("utf-16-le", errors="ignore")
        inside = units[2 * start : 2 * end].decode("utf-16-le", errors="ignore")
        if inside == said:
            return len(before), len(before) + len(inside)
    raise place.error(
        f'span {start}-{end}: the text there is "{text[start:end]}", the annotation says "{said}"'
    )
