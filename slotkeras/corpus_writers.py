"""Utterances written in any format the readers read, so that they read back the same.

`write_utterances(utterances, path, format)` writes an utterance CSV, a token CSV, a
seq.in/seq.out/label folder, CoNLL (an intent as a `# intent = NAME` line above its
sentence), or spans over raw text: jsonl (with its tokens, as spaCy and Prodigy
write them), inline markup (a CSV text column, or a Markdown list under `## intent:`
headings), Rasa NLU YAML, or a Label Studio JSON import. Every file is written
atomically: on any error the destination is left as it was.

Utterances read from tokens are given a text for the span formats: the tokens
joined by spaces, or by nothing when the corpus is written a character a token (as
Chinese is). Such a text must tokenize back to the same tokens when read; where the
readers' default rules would not give them back, the report says which
`--text-tokenizer` does, and a text no rules give back is an error naming the
utterance (jsonl keeps the tokens themselves and is exact for any corpus).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from slotkeras.file_writing import atomic_write
from slotkeras.markup import parse_markup, render_markup
from slotkeras.rasa_yaml import quoted_name
from slotkeras.raw_text import NAMED_RULES, READING_RULES, TextRules
from slotkeras.span_alignment import Report, spans_of, with_text
from slotkeras.tag_schemes import iob_spans
from slotkeras.utterance import NA_TOKENS, DataError, Utterance, writable_problem

OUTPUT_FORMATS = (
    "utterance_csv", "token_csv", "folder", "conll", "jsonl", "markup", "rasa", "label_studio",
)  # fmt: skip
SPAN_OUTPUTS = ("jsonl", "markup", "rasa", "label_studio")
_BY_SUFFIX = {
    ".csv": "utterance_csv",
    ".tsv": "utterance_csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "label_studio",
    ".yml": "rasa",
    ".yaml": "rasa",
    ".md": "markup",
    ".markdown": "markup",
    ".conll": "conll",
    ".bio": "conll",
    ".iob": "conll",
    ".txt": "conll",
}


def output_format_for(path, format: str = "auto") -> str:
    """The format to write `path` in: `format`, or (auto) the one its suffix names; a
    path without a suffix is a seq.in/seq.out/label folder."""
    if format != "auto":
        return format
    path = Path(path)
    if path.is_dir() or not path.suffix:
        return "folder"
    if path.suffix.lower() in _BY_SUFFIX:
        return _BY_SUFFIX[path.suffix.lower()]
    raise DataError(path, "cannot tell the format to write from the suffix: give --output-format")


def write_utterances(utterances, path, format="auto", *, rules=None, report=None) -> None:
    """Writes utterances to `path` in `format` (see `output_format_for`).

    Args:
        utterances: `Utterance` objects; all or none with tags, all or none with intents.
        path: the file (or, for `folder`, the folder) to write.
        format: one of `OUTPUT_FORMATS`, or `"auto"` (default) from the suffix.
        rules: the `TextRules` the span formats' texts will be read back with
            (default: the readers' `READING_RULES`).
        report: a `Report` for what the reader of the file should know.

    Raises:
        DataError: utterances that cannot be written so that they read back equal.
    """
    format = output_format_for(path, format)
    utterances = _checked(list(utterances), path)
    report = report if report is not None else Report()
    if format in SPAN_OUTPUTS:
        utterances = _with_texts(utterances, path, format, rules or READING_RULES, report)
        _note_spans_opened_by_inside_tags(utterances, path, report)
    path = Path(path)
    if format == "folder":
        return _write_folder(utterances, path)
    text = {
        "utterance_csv": _utterance_csv,
        "token_csv": _token_csv,
        "conll": _conll,
        "jsonl": _jsonl,
        "markup": _markdown if path.suffix.lower() in (".md", ".markdown") else _markup_csv,
        "rasa": _rasa,
        "label_studio": _label_studio,
    }[format](utterances, path)
    _write_file(path, text)


def _checked(utterances, path):
    for index, utterance in enumerate(utterances):
        if not isinstance(utterance, Utterance):
            raise ValueError(
                "Received an invalid value for argument `utterances`, expected Utterance "
                f"objects, got {type(utterance).__name__} at index {index}."
            )
    if not utterances:
        raise DataError(path, "no utterances to write")
    for what, has in (("tags", _has_tags), ("intent", _has_intent)):
        count = sum(map(has, utterances))
        if 0 < count < len(utterances):
            index = next(i for i, u in enumerate(utterances) if not has(u))
            raise DataError(
                path, f"utterance {index + 1} has no {what} but {count} others have one"
            )
    for index, utterance in enumerate(utterances):
        problem = writable_problem(utterance)
        if problem:
            raise DataError(path, f"utterance {index + 1} cannot be written: {problem}")
    return utterances


def _has_tags(utterance) -> bool:
    return utterance.tags is not None


def _has_intent(utterance) -> bool:
    return utterance.intent is not None


def _write_file(path: Path, text: str) -> None:
    if path.is_dir():
        raise DataError(path, "is a folder, expected a file to write")
    atomic_write(path, text)


def _write_folder(utterances, path: Path) -> None:
    """seq.in, seq.out (with tags) and label (with intents), each written atomically;
    a label file left from other data is removed."""
    if path.exists() and not path.is_dir():
        raise DataError(path, "is a file, expected a folder to write seq.in into")
    if path.is_dir() and any(path.iterdir()) and not (path / "seq.in").is_file():
        raise DataError(path, "a folder that holds other files and no seq.in: choose a new folder")
    files = {"seq.in": [" ".join(u.tokens) for u in utterances]}
    if utterances[0].tags is not None:
        files["seq.out"] = [" ".join(u.tags) for u in utterances]
    if utterances[0].intent is not None:
        files["label"] = [u.intent for u in utterances]
    for name, lines in files.items():
        atomic_write(path / name, "\n".join(lines) + "\n")
    for stale in {"seq.out", "label"} - set(files):
        (path / stale).unlink(missing_ok=True)


def _rows(header, rows) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _utterance_csv(utterances, path) -> str:
    with_intent = utterances[0].intent is not None
    rows = [
        [" ".join(u.tokens), " ".join(u.tags or ())] + ([u.intent] if with_intent else [])
        for u in utterances
    ]
    return _rows(["text", "tags", "intent"] if with_intent else ["text", "tags"], rows)


def _token_csv(utterances, path) -> str:
    for number, u in enumerate(utterances, start=1):
        missing = next((t for t in u.tokens if t in NA_TOKENS), None)
        if missing is not None:
            raise DataError(
                path,
                f"utterance {number}: the token {missing!r} would read back as a missing value "
                "in a token CSV (write an utterance CSV, CoNLL or jsonl)",
            )
    header = ["sentence_id", "token"]
    header += ["tag"] if utterances[0].tags is not None else []
    header += ["intent"] if utterances[0].intent is not None else []
    rows = []
    for number, u in enumerate(utterances, start=1):
        for index, token in enumerate(u.tokens):
            row = [str(number), token]
            row += [u.tags[index]] if u.tags is not None else []
            row += [u.intent] if u.intent is not None else []
            rows.append(row)
    return _rows(header, rows)


def _conll(utterances, path) -> str:
    blocks = []
    for u in utterances:
        lines = [f"# intent = {u.intent}"] if u.intent is not None else []
        tags = u.tags or [None] * len(u.tokens)
        lines += [token if tag is None else f"{token} {tag}" for token, tag in zip(u.tokens, tags)]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def _jsonl(utterances, path) -> str:
    lines = []
    for u in utterances:
        record = {"text": u.text}
        if u.tags is not None:
            record["spans"] = [[s.start, s.end, s.slot] for s in spans_of(u)]
        if u.intent is not None:
            record["intent"] = u.intent
        record["tokens"] = [
            {"text": t, "start": s, "end": e, "id": i}
            for i, (t, s, e) in enumerate(zip(u.tokens, u.starts, u.ends))
        ]
        lines.append(json.dumps(record, ensure_ascii=False) + "\n")
    return "".join(lines)


def _markup_lines(utterances, path, one_line: bool) -> list[str]:
    """Each utterance's inline markup, checked to read back as written."""
    lines = []
    for number, u in enumerate(utterances, start=1):
        spans = spans_of(u)
        line = render_markup(u.text, spans)
        if one_line and (u.text != u.text.strip() or any(c in u.text for c in "\r\n")):
            raise DataError(
                path, f"utterance {number}: a text with line breaks or edge whitespace "
                f"{u.text!r} cannot be a line of markup (jsonl or a CSV can hold it)"
            )  # fmt: skip
        if one_line and "<!--" in u.text:
            raise DataError(path, f"utterance {number}: '<!--' would open a Markdown comment")
        if parse_markup(line) != (u.text, spans):
            raise DataError(path, f"utterance {number}: {u.text!r} does not read back as markup")
        lines.append(line)
    return lines


def _markup_csv(utterances, path) -> str:
    lines = _markup_lines(utterances, path, one_line=False)
    if utterances[0].intent is None:
        return _rows(["text"], [[line] for line in lines])
    return _rows(["text", "intent"], [[line, u.intent] for line, u in zip(lines, utterances)])


def _runs(utterances, lines):
    """(intent, lines) for each run of consecutive utterances with the same intent: the
    file keeps the utterances' order."""
    runs = []
    for u, line in zip(utterances, lines, strict=True):
        if not runs or runs[-1][0] != u.intent:
            runs.append((u.intent, []))
        runs[-1][1].append(line)
    return runs


def _markdown(utterances, path) -> str:
    out = []
    for intent, lines in _runs(utterances, _markup_lines(utterances, path, one_line=True)):
        if intent is not None:
            out.append(f"## intent:{intent}")
        out.extend(f"- {line}" for line in lines)
        out.append("")
    return "\n".join(out)


def _rasa(utterances, path) -> str:
    out = ['version: "3.1"', "nlu:"]
    for intent, lines in _runs(utterances, _markup_lines(utterances, path, one_line=True)):
        if intent is None:
            out.append("- examples: |")
        else:
            out += [f"- intent: {quoted_name(intent)}", "  examples: |"]
        out.extend(f"    - {line}" for line in lines)
    return "\n".join(out) + "\n"


def label_studio_result(utterance, scores=None) -> list[dict]:
    """The `result` of a Label Studio annotation or prediction: a `labels` item per
    span (with its `score` when `scores`, one per span, are given) and a `choices`
    item for the intent. `utterance`: an `Utterance` with a text, or a prediction."""
    result = []
    for number, span in enumerate(spans_of(utterance), start=1):
        item = {
            "id": f"s{number}",
            "from_name": "label",
            "to_name": "text",
            "type": "labels",
            "value": {
                "start": span.start,
                "end": span.end,
                "text": utterance.text[span.start : span.end],
                "labels": [span.slot],
            },
        }
        if scores is not None:
            item["score"] = scores[number - 1]
        result.append(item)
    if utterance.intent is not None:
        result.append(
            {
                "id": "intent",
                "from_name": "intent",
                "to_name": "text",
                "type": "choices",
                "value": {"choices": [utterance.intent]},
            }
        )
    return result


def _label_studio(utterances, path) -> str:
    tasks = []
    for number, u in enumerate(utterances, start=1):
        task = {"id": number, "data": {"text": u.text}}
        if u.tags is not None:
            task["annotations"] = [{"result": label_studio_result(u), "was_cancelled": False}]
        tasks.append(task)
    return json.dumps(tasks, ensure_ascii=False, indent=1) + "\n"


def _with_texts(utterances, path, format, rules, report):
    """The utterances with texts; the tokens of those that had none must come back
    from the text by `rules` (jsonl keeps them), else by the rules fitted to them,
    which the report names."""
    tokenized = [u for u in utterances if u.text is None]
    if not tokenized:
        return utterances
    fitted = TextRules.fit(u.tokens for u in tokenized)
    joiner = "" if fitted.characters else " "
    utterances = [with_text(u, joiner) for u in utterances]
    if format == "jsonl":
        return utterances
    failed = _first_not_coming_back(utterances, rules)
    if failed is None:
        return utterances
    if fitted != rules and _first_not_coming_back(utterances, fitted) is None:
        report.add(
            f"{path}: its text reads back to these tokens with --text-tokenizer "
            f"'{rules_spec(fitted)}'"
        )
        return utterances
    tokens = [t for t, _, _ in rules.tokenize(failed.text)]
    number = utterances.index(failed) + 1
    raise DataError(
        path,
        f"utterance {number}: the text {failed.text!r} reads back as the tokens {tokens}, "
        f"not {list(failed.tokens)} (jsonl keeps the tokens)",
    )


def _first_not_coming_back(utterances, rules):
    return next((u for u in utterances if not _comes_back(u, rules)), None)


def _comes_back(utterance, rules) -> bool:
    return [t for t, _, _ in rules.tokenize(utterance.text)] == list(utterance.tokens)


def rules_spec(rules: TextRules) -> str:
    """A `--text-tokenizer` value that names `rules`."""
    for name, named in NAMED_RULES.items():
        if named == rules:
            return name
    config = {key: value for key, value in rules.get_config().items() if value}
    return json.dumps(config, ensure_ascii=False)


def _note_spans_opened_by_inside_tags(utterances, path, report):
    """Spans have no `I-` that opens a span (after `O` or another slot): written as
    spans, such a tag reads back as `B-` (the same span, conlleval's reading)."""
    for number, u in enumerate(utterances, start=1):
        for slot, first, _ in iob_spans(u.tags or ()):
            if u.tags[first] != f"B-{slot}":
                report.add(
                    f"{path}: utterance {number}: {u.tags[first]} opens a span (token "
                    f"{first + 1}); written as a span it reads back as B-{slot}"
                )
