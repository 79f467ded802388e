"""Readers, validation and writers for slot-filling data.

Every reader returns a list of `Utterance` (tokens, BIO tags, optional
intent). These input formats are read, all UTF-8 (a BOM and CRLF line ends are
accepted):

- utterance CSV: one utterance per row, columns `text`, `tags`, optional
  `intent`;
- token CSV: one token per row, columns `sentence_id`, `token`, `tag`,
  optional `intent` (constant within a sentence, rows of a sentence
  contiguous);
- a folder in the ATIS/SNIPS layout: `seq.in`, `seq.out`, optional `label`,
  one utterance per line;
- a CoNLL file: token and tag per line, a blank line between sentences,
  `-DOCSTART-` lines skipped, a `# intent = NAME` line above a sentence its intent;
- spans over raw text, as annotation tools export them (slotkeras.span_formats,
  slotkeras.markup, slotkeras.rasa_yaml): `jsonl` (Doccano, spaCy, Prodigy),
  `markup` (inline `[value](slot)` in a CSV text column or a Markdown list),
  `rasa` (Rasa NLU YAML) and `label_studio` (its JSON export). Their text is
  tokenized by the tokenizer's rules in Python (slotkeras.raw_text) and each
  span tags the tokens it covers (slotkeras.span_alignment).

Malformed input raises `DataError`, whose message names the file, the row or
line, and the reason, so a command-line tool can print it as one line.
Tokens and tags are split on whitespace (`str.split()`).

This module imports no TensorFlow, Keras or pandas: it must import fast.

Example:

>>> utterances = read_utterances("data/train.csv")
>>> utterances[0].tokens, utterances[0].tags, utterances[0].intent
(('i', 'want', 'to', 'fly', 'to', 'boston'), ('O', 'O', 'O', 'O', 'O', 'B-toloc.city_name'),
 'atis_flight')
>>> iob_spans(utterances[0].tags)
[('toloc.city_name', 5, 6)]
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from pathlib import Path

from slotkeras.corpus_writers import write_utterances
from slotkeras.markup import has_markup, read_markdown, read_markup_csv
from slotkeras.rasa_yaml import read_rasa
from slotkeras.span_alignment import MISALIGNED, Report
from slotkeras.span_formats import read_jsonl, read_label_studio, text_rules
from slotkeras.tag_schemes import iob_spans
from slotkeras.text_files import (
    MISSING,
    all_or_none,
    check_width,
    column_indexes,
    csv_header,
    csv_records,
    is_blank,
    listing,
    optional_cell,
    peek_header,
    read_text,
    required_cell,
    show,
    split_lines,
    text_lines,
)
from slotkeras.utterance import (
    NA_TOKENS,
    DataError,
    Utterance,
    check_tags,
    plural,
    tag_problem,
)

__all__ = [
    "FORMATS",
    "MISALIGNED_SPANS",
    "SPAN_FORMATS",
    "SPLITS",
    "DataError",
    "Utterance",
    "convert",
    "iob_spans",
    "read_splits",
    "read_utterances",
    "write_utterance_csv",
]

# The formats of spans over raw text (slotkeras.span_formats).
SPAN_FORMATS = ("jsonl", "markup", "rasa", "label_studio")
# Values of the `format` argument of `read_utterances`.
FORMATS = ("auto", "utterance_csv", "token_csv", "folder", "conll", *SPAN_FORMATS)
# What `misaligned_spans` may say (slotkeras.span_alignment).
MISALIGNED_SPANS = MISALIGNED
# The formats auto-detection knows by a file's suffix.
MARKDOWN_SUFFIXES = (".md", ".markdown")
SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "label_studio",
    ".yml": "rasa",
    ".yaml": "rasa",
    **dict.fromkeys(MARKDOWN_SUFFIXES, "markup"),
}
# Sub-folders that `read_splits` looks for, in this order.
SPLITS = ("train", "valid", "test")

_DOCSTART = "-DOCSTART-"
# A sentence's intent in CoNLL: a `# intent = NAME` line above it (as CoNLL-U comments).
_CONLL_INTENT = re.compile(r"#\s*intent\s*=\s*(\S(?:.*\S)?)\s*$")

# --------------------------------------------------------------------------
# Public readers
# --------------------------------------------------------------------------


def read_utterances(
    path,
    *,
    format="auto",
    text_column="text",
    tags_column="tags",
    intent_column="intent",
    sentence_id_column="sentence_id",
    token_column="token",
    tag_column="tag",
    conll_token_field=0,
    conll_tag_field=-1,
    require_tags=True,
    misaligned_spans="error",
    text_tokenizer="words",
    report=None,
) -> list[Utterance]:
    """Reads one file or folder of utterances, validating every record.

    Args:
        path: a file of any of `FORMATS`, or a folder holding `seq.in`.
        format: `"auto"` (default) or one of `FORMATS`. Auto: a folder is read as
            a `seq.in`/`seq.out`/`label` folder; `.jsonl` is jsonl, `.json`
            label_studio, `.yml`/`.yaml` rasa, `.md` markup; a `.csv` (or `.tsv`)
            file is a token CSV when its header has the sentence-id and token
            columns and either the tag column or no text column, markup when it
            has a text column holding `[value](slot)` and no tags column, else an
            utterance CSV; any other file is CoNLL.
        text_column, tags_column, intent_column: utterance CSV column names
            (defaults `text`, `tags`, `intent`); the text and intent keys of
            jsonl records and the text key of Label Studio's `data` too.
        sentence_id_column, token_column, tag_column: token CSV column names
            (defaults `sentence_id`, `token`, `tag`); `intent_column` is the
            intent column there too.
        conll_token_field, conll_tag_field: which whitespace-separated field
            of a CoNLL line is the token (default 0) and which the tag
            (default -1, the last).
        require_tags: when True (default) tags must be present; when False
            only the tokens are needed and `tags` is `None` where the input
            has none (tags that are present are still validated).
        misaligned_spans: in the span formats, a span that starts or ends inside
            a token is an error (`"error"`, default), left out (`"skip"`) or
            widened to whole tokens (`"expand"`); either of the last two is
            reported, one line a span.
        text_tokenizer: how the span formats' raw text becomes tokens (see
            `slotkeras.span_formats.text_rules`): `"words"` (default),
            `"characters"`, JSON rules, a JSON file of them or a model folder.
        report: a `slotkeras.span_alignment.Report` that collects the report's
            lines; None (default) prints them on stderr once the file is read.

    Returns:
        A list of `Utterance`, in file order. Utterances read from spans over
        raw text also hold the text and each token's offsets.

    Raises:
        DataError: the input is missing or malformed.
    """
    columns = {
        "text_column": text_column,
        "tags_column": tags_column,
        "intent_column": intent_column,
        "sentence_id_column": sentence_id_column,
        "token_column": token_column,
        "tag_column": tag_column,
    }
    _check_reader_arguments(
        format,
        {"conll_token_field": conll_token_field, "conll_tag_field": conll_tag_field},
        columns,
        misaligned_spans,
    )
    path = Path(path)
    if not path.exists():
        raise DataError(path, "no such file or folder")
    if path.is_dir():
        if format not in ("auto", "folder"):
            raise DataError(path, f"is a folder, expected a file (format {format!r})")
        return _read_folder(path, require_tags=require_tags)
    if format == "folder":
        raise DataError(path, "is a file, expected a folder holding seq.in (format 'folder')")

    if format == "auto" and path.name in ("seq.in", "seq.out", "label"):
        raise DataError(path, f"is part of a seq.in/seq.out folder: pass the folder {path.parent}")
    text = read_text(path)
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    if format == "auto":
        format = _detect_format(path, text, delimiter, columns)
    if format in SPAN_FORMATS:
        shown = Report() if report is None else report
        spans = {
            "rules": text_rules(text_tokenizer),
            "misaligned": misaligned_spans,
            "report": shown,
        }
        utterances = _read_spans(path, text, format, delimiter, columns, require_tags, spans)
        if report is None:
            shown.show()
        return utterances
    conll_fields = (conll_token_field, conll_tag_field)
    return _read_tokenized(path, text, format, delimiter, columns, require_tags, conll_fields)


def _read_tokenized(path, text, format, delimiter, columns, require_tags, conll_fields):
    """Utterances of a file of tokens and their tags (utterance or token CSV, CoNLL)."""
    if format == "utterance_csv":
        return _read_utterance_csv(
            path,
            text,
            delimiter,
            text_column=columns["text_column"],
            tags_column=columns["tags_column"],
            intent_column=columns["intent_column"],
            require_tags=require_tags,
        )
    if format == "token_csv":
        return _read_token_csv(
            path,
            text,
            delimiter,
            sentence_id_column=columns["sentence_id_column"],
            token_column=columns["token_column"],
            tag_column=columns["tag_column"],
            intent_column=columns["intent_column"],
            require_tags=require_tags,
        )
    return _read_conll(
        path,
        text,
        token_field=conll_fields[0],
        tag_field=conll_fields[1],
        require_tags=require_tags,
    )


def _read_spans(path, text, format, delimiter, columns, require_tags, options):
    """Utterances of a file of spans over raw text (`options`: how they are aligned)."""
    text_column, intent_column = columns["text_column"], columns["intent_column"]
    if format == "jsonl":
        return read_jsonl(
            path,
            text,
            text_column=text_column,
            intent_column=intent_column,
            require_tags=require_tags,
            **options,
        )
    if format == "label_studio":
        return read_label_studio(
            path, text, text_column=text_column, require_tags=require_tags, **options
        )
    if format == "rasa":
        return read_rasa(path, text, **options)
    if path.suffix.lower() in MARKDOWN_SUFFIXES:
        return read_markdown(path, text, **options)
    return read_markup_csv(
        path, text, delimiter, text_column=text_column, intent_column=intent_column, **options
    )


def _detect_format(path, text, delimiter, columns):
    """The format of a file given as "auto": by suffix; for a CSV/TSV, token CSV by
    its header (a sentence id and a token column, and a tag column or no text
    column), markup by a text column holding marks and no tags column; CoNLL
    otherwise."""
    suffix = path.suffix.lower()
    if suffix in SUFFIXES:
        return SUFFIXES[suffix]
    if suffix not in (".csv", ".tsv"):
        return "conll"
    header = peek_header(text, delimiter)
    is_token_csv = (
        columns["sentence_id_column"] in header
        and columns["token_column"] in header
        and (columns["tag_column"] in header or columns["text_column"] not in header)
    )
    if is_token_csv:
        return "token_csv"
    if columns["text_column"] in header and columns["tags_column"] not in header:
        index = header.index(columns["text_column"])
        try:
            for _, row in csv_records(path, text, delimiter):
                if len(row) > index and has_markup(row[index]):
                    return "markup"
        except DataError:
            pass  # the reader reports it
    return "utterance_csv"


def read_splits(folder, **options) -> dict[str, list[Utterance]]:
    """Reads the `train/`, `valid/` and `test/` sub-folders of a folder.

    Args:
        folder: a folder holding `train/` and any of `valid/`, `test/`, each
            a folder in the `seq.in`/`seq.out`/`label` layout (the ATIS and
            SNIPS distributions).
        **options: passed to `read_utterances` for every split.

    Returns:
        A dict from split name to utterances, with the keys in the order
        train, valid, test, holding only the splits that are present.

    Raises:
        DataError: the folder or its `train/` is missing, or a split is
            malformed.
    """
    folder = Path(folder)
    if not folder.exists():
        raise DataError(folder, "no such folder")
    if not folder.is_dir():
        raise DataError(folder, "is a file, expected a folder holding train/, valid/, test/")
    if not (folder / "train").exists():
        raise DataError(folder, f"no train/ in this folder (found: {listing(folder)})")
    splits = {}
    for name in SPLITS:
        split = folder / name
        if split.exists():
            splits[name] = read_utterances(split, **options)
    return splits


# --------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------


def write_utterance_csv(utterances: Iterable[Utterance], path) -> None:
    """Writes utterances as an utterance CSV, atomically.

    The columns are `text` and `tags` (empty cells when the utterances have
    no tags), then `intent` only if any utterance has one. The file is
    written to a temporary file next to `path` and moved into place, so
    `path` is either untouched or complete. Missing parent folders are
    created.

    Args:
        utterances: `Utterance` objects; either all or none have tags, and
            either all or none have an intent.
        path: the CSV file to write.

    Raises:
        ValueError: an utterance cannot be written so that it reads back
            equal (an empty or whitespace-holding token, an invalid tag,
            tags or intents on only some utterances).
    """
    write_utterances(utterances, path, "utterance_csv")


def convert(src, dst, *, output_format="auto", report=None, **options) -> int:
    """Reads utterances in any format and writes them in any other.

    `src` is read and validated completely before anything is written; `dst`
    is written atomically, so on any error it is left as it was.

    Args:
        src: the input file or folder.
        dst: the file (or folder) to write.
        output_format: one of `slotkeras.corpus_writers.OUTPUT_FORMATS`, or
            `"auto"` (default): from `dst`'s suffix (`.csv` an utterance CSV,
            `.jsonl`, `.json` Label Studio, `.yml` Rasa, `.md` markup, `.conll`,
            none a seq.in folder).
        report: a `Report` for the lines the reading and the writing report;
            None (default) prints them on stderr.
        **options: passed to `read_utterances`.

    Returns:
        The number of utterances written.
    """
    shown = Report() if report is None else report
    utterances = read_utterances(src, report=shown, **options)
    rules = text_rules(options.get("text_tokenizer", "words"))
    try:
        write_utterances(utterances, dst, output_format, rules=rules, report=shown)
    except ValueError as error:
        if isinstance(error, DataError):
            raise
        raise DataError(dst, str(error)) from None
    if report is None:
        shown.show()
    return len(utterances)


# --------------------------------------------------------------------------
# Spans
# --------------------------------------------------------------------------


def _read_utterance_csv(
    path, text, delimiter, *, text_column, tags_column, intent_column, require_tags
):
    rows = csv_records(path, text, delimiter)
    header_line, header = csv_header(path, rows)
    needed = [text_column, tags_column] if require_tags else [text_column]
    columns = column_indexes(path, header, header_line, needed, [tags_column, intent_column])
    text_index = columns[text_column]
    tags_index = columns.get(tags_column)
    intent_index = columns.get(intent_column)

    lines, token_rows, tag_rows, intents = [], [], [], []
    for line, row in rows:
        if is_blank(row):
            continue
        check_width(path, row, header, line)
        tokens = tuple(required_cell(path, row[text_index], text_column, line).split())

        tags = None
        if tags_index is not None:
            tags = optional_cell(path, row[tags_index], tags_column, line, "row", require_tags)
            if tags is not MISSING:
                tags = tuple(tags.split())
                check_tags(path, tokens, tags, line, "row")
        intent = None
        if intent_index is not None:
            intent = optional_cell(path, row[intent_index], intent_column, line, "row", False)

        lines.append(line)
        token_rows.append(tokens)
        tag_rows.append(tags)
        intents.append(intent)

    if not lines:
        raise DataError(path, "no data rows (header only)")
    tag_rows = all_or_none(path, tag_rows, lines, "row", f"empty {tags_column}", "tags")
    intents = all_or_none(path, intents, lines, "row", f"empty {intent_column}", "an intent")
    return [Utterance(*fields) for fields in zip(token_rows, tag_rows, intents, strict=True)]


def _check_reader_arguments(format, fields: dict, columns: dict, misaligned_spans) -> None:
    """The reader's own arguments (not the data): named, with the value, when wrong."""
    for name, value, allowed in (
        ("format", format, FORMATS),
        ("misaligned_spans", misaligned_spans, MISALIGNED_SPANS),
    ):
        if value not in allowed:
            raise ValueError(
                f"Received an invalid value for argument `{name}`, expected one of "
                f"{', '.join(allowed)}, got {value!r}."
            )
    for name, value in fields.items():
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(
                f"Received an invalid value for argument `{name}`, expected an integer "
                f"field index, got {value!r}."
            )
    for name, value in columns.items():
        if not isinstance(value, str) or not value.strip():
            raise ValueError(
                f"Received an invalid value for argument `{name}`, expected a non-empty "
                f"column name, got {value!r}."
            )


def _read_token_csv(
    path,
    text,
    delimiter,
    *,
    sentence_id_column,
    token_column,
    tag_column,
    intent_column,
    require_tags,
):
    rows = csv_records(path, text, delimiter)
    header_line, header = csv_header(path, rows)
    needed = [sentence_id_column, token_column]
    if require_tags:
        needed.append(tag_column)
    columns = column_indexes(path, header, header_line, needed, [tag_column, intent_column])
    id_index = columns[sentence_id_column]
    token_index = columns[token_column]
    tag_index = columns.get(tag_column)
    intent_index = columns.get(intent_column)

    sentences = []  # [first line, id, tokens, tags, intent, intent line]
    started = {}  # sentence id -> first line
    tag_values, tag_lines = [], []
    for line, row in rows:
        if is_blank(row):
            continue
        check_width(path, row, header, line)
        sentence_id = required_cell(path, row[id_index], sentence_id_column, line)
        token = required_cell(path, row[token_index], token_column, line, NA_TOKENS)
        if len(token.split()) > 1:
            raise DataError(path, f"{token_column} {token!r} contains whitespace", row=line)

        tag = None
        if tag_index is not None:
            tag = optional_cell(path, row[tag_index], tag_column, line, "row", require_tags)
            if tag is not MISSING:
                problem = tag_problem(tag)
                if problem:
                    raise DataError(path, problem, row=line)
        intent = None
        if intent_index is not None:
            intent = optional_cell(path, row[intent_index], intent_column, line, "row", False)

        current = sentences[-1] if sentences else None
        if current is None or current[1] != sentence_id:
            if sentence_id in started:
                raise DataError(
                    path,
                    f"{sentence_id_column} {sentence_id!r} reappears after another sentence "
                    f"started (it began on row {started[sentence_id]}; the rows of a sentence "
                    "must be contiguous)",
                    row=line,
                )
            started[sentence_id] = line
            current = [line, sentence_id, [], [], intent, line]
            sentences.append(current)
        elif intent != current[4]:
            raise DataError(
                path,
                f"{show(intent, intent_column)} differs from {show(current[4], intent_column)} "
                f"on row {current[5]} of {sentence_id_column} {sentence_id!r}",
                row=line,
            )
        current[2].append(token)
        current[3].append(tag)
        tag_values.append(tag)
        tag_lines.append(line)

    if not sentences:
        raise DataError(path, "no data rows (header only)")
    all_or_none(path, tag_values, tag_lines, "row", f"empty {tag_column}", "a tag")
    lines = [sentence[0] for sentence in sentences]
    intents = all_or_none(
        path, [s[4] for s in sentences], lines, "row", f"empty {intent_column}", "an intent"
    )
    return [
        Utterance(
            tuple(tokens),
            None if tag_index is None or tags[0] is MISSING else tuple(tags),
            intent,
        )
        for (_, _, tokens, tags, _, _), intent in zip(sentences, intents, strict=True)
    ]


def _read_folder(folder, *, require_tags):
    seq_in = folder / "seq.in"
    seq_out = folder / "seq.out"
    label = folder / "label"
    if not seq_in.is_file():
        hint = ""
        if (folder / "train").is_dir():
            hint = "; it holds train/, read it with read_splits"
        raise DataError(folder, f"no seq.in in this folder (found: {listing(folder)}){hint}")
    if require_tags and not seq_out.exists():
        raise DataError(folder, f"no seq.out in this folder (found: {listing(folder)})")

    texts = text_lines(seq_in)
    if not texts:
        raise DataError(seq_in, "empty file")
    tag_lines = text_lines(seq_out) if seq_out.exists() else None
    labels = text_lines(label) if label.exists() else None
    for other, other_lines in ((seq_out, tag_lines), (label, labels)):
        if other_lines is None or len(other_lines) == len(texts):
            continue
        longer, shorter = (other, seq_in) if len(other_lines) > len(texts) else (seq_in, other)
        counts = {seq_in: len(texts), other: len(other_lines)}
        raise DataError(
            longer,
            f"{longer.name} has {plural(counts[longer], 'line')} but {shorter.name} has "
            f"{counts[shorter]}",
            row=min(counts.values()) + 1,
            unit="line",
        )

    utterances = []
    for index, line in enumerate(texts):
        number = index + 1
        tokens = tuple(line.split())
        if not tokens:
            raise DataError(seq_in, "empty line (no tokens)", row=number, unit="line")
        tags = None
        if tag_lines is not None:
            tags = tuple(tag_lines[index].split())
            check_tags(seq_out, tokens, tags, number, "line")
        intent = None
        if labels is not None:
            intent = labels[index].strip()
            if intent == "":
                raise DataError(label, "empty intent", row=number, unit="line")
        utterances.append(Utterance(tokens, tags, intent))
    return utterances


def _read_conll(path, text, *, token_field, tag_field, require_tags):
    if text.strip() == "":
        raise DataError(path, "empty file")
    utterances, intents, lines = [], [], []
    tokens, tags = [], []
    has_tags = None  # decided by the first token line
    first_line = None
    intent = [MISSING, None]  # the intent of the next sentence, and its line

    def close():
        if tokens:
            utterances.append(Utterance(tuple(tokens), tuple(tags) if has_tags else None))
            intents.append(intent[0])
            lines.append(intent[1] or number)
            tokens.clear()
            tags.clear()
            intent[:] = [MISSING, None]

    for number, line in enumerate(split_lines(text), start=1):
        fields = line.split()
        named = _CONLL_INTENT.match(line)
        if named:
            close()
            intent[:] = [named.group(1), number]
            continue
        if not fields or fields[0] == _DOCSTART:
            close()
            continue
        token_index = _field_index(fields, token_field)
        if token_index is None:
            raise DataError(
                path,
                f"{plural(len(fields), 'field')}, no field {token_field} for the token",
                row=number,
                unit="line",
            )
        tag_index = _field_index(fields, tag_field)
        line_has_tag = tag_index is not None and tag_index != token_index
        if require_tags and not line_has_tag:
            raise DataError(
                path,
                f"{plural(len(fields), 'field')}, expected a token and a tag "
                f"(tag field {tag_field})",
                row=number,
                unit="line",
            )
        if has_tags is None:
            has_tags, first_line = line_has_tag, number
        elif line_has_tag != has_tags:
            reason = (
                f"a tag on this line, but line {first_line} has none"
                if line_has_tag
                else f"no tag on this line, but line {first_line} has one"
            )
            raise DataError(path, reason, row=number, unit="line")
        if line_has_tag:
            problem = tag_problem(fields[tag_index])
            if problem:
                raise DataError(path, problem, row=number, unit="line")
            tags.append(fields[tag_index])
        tokens.append(fields[token_index])
    close()
    if not utterances:
        raise DataError(path, "no sentences (only -DOCSTART- lines)")
    intents = all_or_none(path, intents, lines, "line", "no '# intent = NAME'", "one")
    return [dataclasses.replace(u, intent=i) for u, i in zip(utterances, intents, strict=True)]


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def _field_index(fields, index) -> int | None:
    position = index if index >= 0 else len(fields) + index
    return position if 0 <= position < len(fields) else None
