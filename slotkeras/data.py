"""Readers, validation and writers for slot-filling data.

Every reader returns a list of `Utterance` (tokens, BIO tags, optional
intent). Four input formats are read, all UTF-8 (a BOM and CRLF line ends are
accepted):

- utterance CSV: one utterance per row, columns `text`, `tags`, optional
  `intent`;
- token CSV: one token per row, columns `sentence_id`, `token`, `tag`,
  optional `intent` (constant within a sentence, rows of a sentence
  contiguous);
- a folder in the ATIS/SNIPS layout: `seq.in`, `seq.out`, optional `label`,
  one utterance per line;
- a CoNLL file: token and tag per line, a blank line between sentences,
  `-DOCSTART-` lines skipped.

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

import csv
import io
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from slotkeras.file_writing import atomic_write
from slotkeras.tag_schemes import iob_spans

__all__ = [
    "FORMATS",
    "SPLITS",
    "DataError",
    "Utterance",
    "convert",
    "iob_spans",
    "read_splits",
    "read_utterances",
    "write_utterance_csv",
]

# Values of the `format` argument of `read_utterances`.
FORMATS = ("auto", "utterance_csv", "token_csv", "folder", "conll")
# Sub-folders that `read_splits` looks for, in this order.
SPLITS = ("train", "valid", "test")

# Whole cells that are a missing value written out by a spreadsheet or by
# pandas (`str(float("nan"))`, `str(None)`, ...), not data.
_NA_CELLS = frozenset({"nan", "NaN", "NAN", "None", "null", "NULL", "<NA>", "N/A", "n/a", "#N/A"})
# For single tokens only the unambiguous ones: "none" or "null" can be words.
_NA_TOKENS = frozenset({"nan", "NaN", "NAN", "<NA>"})
_DOCSTART = "-DOCSTART-"
_UTF8_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Utterance:
    """One utterance: its tokens, one BIO tag per token, and its intent.

    Args:
        tokens: the words, a tuple of non-empty strings without whitespace.
        tags: one tag per token (`O`, `B-<slot>`, `I-<slot>`), or `None`
            (default) when the input has no tags (prediction input).
        intent: the utterance's intent, or `None` (default) when the input
            has none.

    Lists are accepted and stored as tuples, so utterances compare equal and
    are hashable.
    """

    tokens: tuple[str, ...]
    tags: tuple[str, ...] | None = None
    intent: str | None = None

    def __post_init__(self):
        if isinstance(self.tokens, str):
            raise TypeError(
                "Received an invalid value for argument `tokens`, expected a sequence of "
                f"strings, got the string {self.tokens!r}."
            )
        object.__setattr__(self, "tokens", tuple(self.tokens))
        if self.tags is not None:
            if isinstance(self.tags, str):
                raise TypeError(
                    "Received an invalid value for argument `tags`, expected a sequence of "
                    f"strings or None, got the string {self.tags!r}."
                )
            object.__setattr__(self, "tags", tuple(self.tags))
            if len(self.tags) != len(self.tokens):
                raise ValueError(
                    "An Utterance needs one tag per token, got "
                    f"{_count_pair(self.tokens, self.tags)}."
                )


class DataError(ValueError):
    """One malformed input: names the file, the row/line and the reason.

    Args:
        path: the offending file or folder.
        reason: what is wrong, one line.
        row: 1-based row (CSV: the physical line where the record starts,
            the header being line 1) or line number; `None` (default) when
            the problem concerns the whole file.
        unit: `"row"` (default) for CSV records, `"line"` for lines of
            text files (folders, CoNLL, undecodable bytes).

    `str(e)` is `"{path}, {unit} {row}: {reason}"`, or `"{path}: {reason}"`
    when `row` is None.
    """

    def __init__(self, path, reason, row=None, unit="row"):
        self.path = os.fspath(path)
        self.reason = reason
        self.row = row
        self.unit = unit
        if row is None:
            message = f"{self.path}: {reason}"
        else:
            message = f"{self.path}, {unit} {row}: {reason}"
        super().__init__(message)

    def __reduce__(self):
        return (type(self), (self.path, self.reason, self.row, self.unit))


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
) -> list[Utterance]:
    """Reads one file or folder of utterances, validating every record.

    Args:
        path: a CSV file, a CoNLL file, or a folder holding `seq.in`.
        format: `"auto"` (default), `"utterance_csv"`, `"token_csv"`,
            `"folder"` or `"conll"`. Auto: a folder is read as a
            `seq.in`/`seq.out`/`label` folder; a `.csv` (or `.tsv`) file is
            a token CSV when its header has the sentence-id and token
            columns and either the tag column or no text column, else an
            utterance CSV; any other file is CoNLL.
        text_column, tags_column, intent_column: utterance CSV column names
            (defaults `text`, `tags`, `intent`).
        sentence_id_column, token_column, tag_column: token CSV column names
            (defaults `sentence_id`, `token`, `tag`); `intent_column` is the
            intent column there too.
        conll_token_field, conll_tag_field: which whitespace-separated field
            of a CoNLL line is the token (default 0) and which the tag
            (default -1, the last).
        require_tags: when True (default) tags must be present; when False
            only the tokens are needed and `tags` is `None` where the input
            has none (tags that are present are still validated).

    Returns:
        A list of `Utterance`, in file order.

    Raises:
        DataError: the input is missing or malformed.
    """
    _check_reader_arguments(
        format,
        {"conll_token_field": conll_token_field, "conll_tag_field": conll_tag_field},
        {
            "text_column": text_column,
            "tags_column": tags_column,
            "intent_column": intent_column,
            "sentence_id_column": sentence_id_column,
            "token_column": token_column,
            "tag_column": tag_column,
        },
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
    text = _read_text(path)
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    if format == "auto":
        columns = (text_column, sentence_id_column, token_column, tag_column)
        format = _detect_format(path, text, delimiter, *columns)

    if format == "utterance_csv":
        return _read_utterance_csv(
            path,
            text,
            delimiter,
            text_column=text_column,
            tags_column=tags_column,
            intent_column=intent_column,
            require_tags=require_tags,
        )
    if format == "token_csv":
        return _read_token_csv(
            path,
            text,
            delimiter,
            sentence_id_column=sentence_id_column,
            token_column=token_column,
            tag_column=tag_column,
            intent_column=intent_column,
            require_tags=require_tags,
        )
    return _read_conll(
        path,
        text,
        token_field=conll_token_field,
        tag_field=conll_tag_field,
        require_tags=require_tags,
    )


def _detect_format(
    path, text, delimiter, text_column, sentence_id_column, token_column, tag_column
):
    """The format of a file given as "auto": CSV/TSV by suffix, token CSV by its
    header (a sentence id and a token column, and a tag column or no text column),
    CoNLL otherwise."""
    if path.suffix.lower() not in (".csv", ".tsv"):
        return "conll"
    header = _peek_header(text, delimiter)
    is_token_csv = (
        sentence_id_column in header
        and token_column in header
        and (tag_column in header or text_column not in header)
    )
    return "token_csv" if is_token_csv else "utterance_csv"


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
        raise DataError(folder, f"no train/ in this folder (found: {_listing(folder)})")
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
    utterances = list(utterances)
    for index, utterance in enumerate(utterances):
        if not isinstance(utterance, Utterance):
            raise ValueError(
                "Received an invalid value for argument `utterances`, expected Utterance "
                f"objects, got {type(utterance).__name__} at index {index}."
            )
    with_tags = sum(u.tags is not None for u in utterances)
    with_intent = sum(u.intent is not None for u in utterances)
    if 0 < with_tags < len(utterances):
        index = next(i for i, u in enumerate(utterances) if u.tags is None)
        raise ValueError(f"Utterance {index} has no tags but {with_tags} others have tags.")
    if 0 < with_intent < len(utterances):
        index = next(i for i, u in enumerate(utterances) if u.intent is None)
        raise ValueError(f"Utterance {index} has no intent but {with_intent} others have one.")

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["text", "tags", "intent"] if with_intent else ["text", "tags"])
    for index, utterance in enumerate(utterances):
        problem = _writable_problem(utterance)
        if problem:
            raise ValueError(f"Utterance {index} cannot be written: {problem}.")
        row = [" ".join(utterance.tokens), " ".join(utterance.tags or ())]
        if with_intent:
            row.append(utterance.intent)
        writer.writerow(row)
    _atomic_write(Path(path), buffer.getvalue())


def convert(src, dst, **options) -> int:
    """Reads utterances in any format and writes them as an utterance CSV.

    `src` is read and validated completely before anything is written; `dst`
    is written atomically, so on any error it is left as it was.

    Args:
        src: the input file or folder.
        dst: the utterance CSV to write.
        **options: passed to `read_utterances`.

    Returns:
        The number of utterances written.
    """
    utterances = read_utterances(src, **options)
    write_utterance_csv(utterances, dst)
    return len(utterances)


# --------------------------------------------------------------------------
# Spans
# --------------------------------------------------------------------------


def _read_utterance_csv(
    path, text, delimiter, *, text_column, tags_column, intent_column, require_tags
):
    rows = _csv_records(path, text, delimiter)
    header_line, header = _csv_header(path, rows)
    needed = [text_column, tags_column] if require_tags else [text_column]
    columns = _column_indexes(path, header, header_line, needed, [tags_column, intent_column])
    text_index = columns[text_column]
    tags_index = columns.get(tags_column)
    intent_index = columns.get(intent_column)

    lines, token_rows, tag_rows, intents = [], [], [], []
    for line, row in rows:
        if _is_blank(row):
            continue
        _check_width(path, row, header, line)
        tokens = tuple(_required_cell(path, row[text_index], text_column, line).split())

        tags = None
        if tags_index is not None:
            tags = _optional_cell(path, row[tags_index], tags_column, line, "row", require_tags)
            if tags is not _MISSING:
                tags = tuple(tags.split())
                _check_tags(path, tokens, tags, line, "row")
        intent = None
        if intent_index is not None:
            intent = _optional_cell(path, row[intent_index], intent_column, line, "row", False)

        lines.append(line)
        token_rows.append(tokens)
        tag_rows.append(tags)
        intents.append(intent)

    if not lines:
        raise DataError(path, "no data rows (header only)")
    tag_rows = _all_or_none(path, tag_rows, lines, "row", f"empty {tags_column}", "tags")
    intents = _all_or_none(path, intents, lines, "row", f"empty {intent_column}", "an intent")
    return [Utterance(*fields) for fields in zip(token_rows, tag_rows, intents, strict=True)]


def _check_reader_arguments(format, fields: dict, columns: dict) -> None:
    """The reader's own arguments (not the data): named, with the value, when wrong."""
    if format not in FORMATS:
        raise ValueError(
            "Received an invalid value for argument `format`, expected one of "
            f"{', '.join(FORMATS)}, got {format!r}."
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


def _required_cell(path, cell: str, column: str, line: int, missing=_NA_CELLS) -> str:
    """A cell that must hold a value: stripped, neither empty nor in `missing`."""
    cell = cell.strip()
    if cell == "":
        raise DataError(path, f"empty {column}", row=line)
    if cell in missing:
        raise DataError(path, f"missing value {cell!r} in column '{column}'", row=line)
    return cell


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
    rows = _csv_records(path, text, delimiter)
    header_line, header = _csv_header(path, rows)
    needed = [sentence_id_column, token_column]
    if require_tags:
        needed.append(tag_column)
    columns = _column_indexes(path, header, header_line, needed, [tag_column, intent_column])
    id_index = columns[sentence_id_column]
    token_index = columns[token_column]
    tag_index = columns.get(tag_column)
    intent_index = columns.get(intent_column)

    sentences = []  # [first line, id, tokens, tags, intent, intent line]
    started = {}  # sentence id -> first line
    tag_values, tag_lines = [], []
    for line, row in rows:
        if _is_blank(row):
            continue
        _check_width(path, row, header, line)
        sentence_id = _required_cell(path, row[id_index], sentence_id_column, line)
        token = _required_cell(path, row[token_index], token_column, line, _NA_TOKENS)
        if len(token.split()) > 1:
            raise DataError(path, f"{token_column} {token!r} contains whitespace", row=line)

        tag = None
        if tag_index is not None:
            tag = _optional_cell(path, row[tag_index], tag_column, line, "row", require_tags)
            if tag is not _MISSING:
                problem = _tag_problem(tag)
                if problem:
                    raise DataError(path, problem, row=line)
        intent = None
        if intent_index is not None:
            intent = _optional_cell(path, row[intent_index], intent_column, line, "row", False)

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
                f"{_show(intent, intent_column)} differs from {_show(current[4], intent_column)} "
                f"on row {current[5]} of {sentence_id_column} {sentence_id!r}",
                row=line,
            )
        current[2].append(token)
        current[3].append(tag)
        tag_values.append(tag)
        tag_lines.append(line)

    if not sentences:
        raise DataError(path, "no data rows (header only)")
    _all_or_none(path, tag_values, tag_lines, "row", f"empty {tag_column}", "a tag")
    lines = [sentence[0] for sentence in sentences]
    intents = _all_or_none(
        path, [s[4] for s in sentences], lines, "row", f"empty {intent_column}", "an intent"
    )
    return [
        Utterance(
            tuple(tokens),
            None if tag_index is None or tags[0] is _MISSING else tuple(tags),
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
        raise DataError(folder, f"no seq.in in this folder (found: {_listing(folder)}){hint}")
    if require_tags and not seq_out.exists():
        raise DataError(folder, f"no seq.out in this folder (found: {_listing(folder)})")

    texts = _text_lines(seq_in)
    if not texts:
        raise DataError(seq_in, "empty file")
    tag_lines = _text_lines(seq_out) if seq_out.exists() else None
    labels = _text_lines(label) if label.exists() else None
    for other, other_lines in ((seq_out, tag_lines), (label, labels)):
        if other_lines is None or len(other_lines) == len(texts):
            continue
        longer, shorter = (other, seq_in) if len(other_lines) > len(texts) else (seq_in, other)
        counts = {seq_in: len(texts), other: len(other_lines)}
        raise DataError(
            longer,
            f"{longer.name} has {_plural(counts[longer], 'line')} but {shorter.name} has "
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
            _check_tags(seq_out, tokens, tags, number, "line")
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
    utterances = []
    tokens, tags = [], []
    has_tags = None  # decided by the first token line
    first_line = None

    def close():
        if tokens:
            utterances.append(Utterance(tuple(tokens), tuple(tags) if has_tags else None))
            tokens.clear()
            tags.clear()

    for number, line in enumerate(_split_lines(text), start=1):
        fields = line.split()
        if not fields or fields[0] == _DOCSTART:
            close()
            continue
        token_index = _field_index(fields, token_field)
        if token_index is None:
            raise DataError(
                path,
                f"{_plural(len(fields), 'field')}, no field {token_field} for the token",
                row=number,
                unit="line",
            )
        tag_index = _field_index(fields, tag_field)
        line_has_tag = tag_index is not None and tag_index != token_index
        if require_tags and not line_has_tag:
            raise DataError(
                path,
                f"{_plural(len(fields), 'field')}, expected a token and a tag "
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
            problem = _tag_problem(fields[tag_index])
            if problem:
                raise DataError(path, problem, row=number, unit="line")
            tags.append(fields[tag_index])
        tokens.append(fields[token_index])
    close()
    if not utterances:
        raise DataError(path, "no sentences (only -DOCSTART- lines)")
    return utterances


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


class _Missing:
    """Marks an empty optional cell until the whole file is seen."""

    def __repr__(self):
        return "<missing>"


_MISSING = _Missing()


def _read_text(path: Path) -> str:
    """The file decoded as UTF-8 (a BOM dropped), or a DataError."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(path, "no such file") from None
    except IsADirectoryError:
        raise DataError(path, "is a folder, expected a file") from None
    except PermissionError:
        raise DataError(path, "permission denied") from None
    except OSError as error:
        raise DataError(path, f"cannot read it: {error.strerror or error}") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(path, "UTF-16 text, expected UTF-8 (save it as UTF-8)")
    if data.startswith(b"PK\x03\x04"):
        raise DataError(
            path, "binary file, not text (a zip archive: an Excel workbook? save it as CSV UTF-8)"
        )
    if b"\0" in data:
        raise DataError(path, "binary file, not text")
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        before = data[: error.start]
        line = before.count(b"\n") + before.count(b"\r") - before.count(b"\r\n") + 1
        column = len(before) - max(before.rfind(b"\n"), before.rfind(b"\r"))
        raise DataError(
            path,
            f"not valid UTF-8 (byte 0x{data[error.start]:02x} at byte {column} of the line)",
            row=line,
            unit="line",
        ) from None


def _split_lines(text: str) -> list[str]:
    """Lines split at \\n, \\r\\n or \\r (as the csv module does), no final empty line."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _text_lines(path: Path) -> list[str]:
    """The lines of a seq.in / seq.out / label file, trailing blank lines dropped."""
    if path.is_dir():
        raise DataError(path, "is a folder, expected a file")
    lines = _split_lines(_read_text(path))
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def _csv_records(path, text, delimiter) -> Iterator[tuple[int, list[str]]]:
    """(line where the record starts, fields) for each CSV record."""
    if text.strip() == "":
        raise DataError(path, "empty file")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise DataError(path, f"CSV quoting error: {error}", row=start) from None
        yield start, row
        start = reader.line_num + 1


def _csv_header(path, rows) -> tuple[int, list[str]]:
    for line, row in rows:
        if not _is_blank(row):
            return line, [name.strip() for name in row]
    raise DataError(path, "empty file")


def _peek_header(text, delimiter) -> list[str]:
    """The header names, or [] when the header cannot be parsed (the reader reports it)."""
    try:
        return _csv_header("", _csv_records("", text, delimiter))[1]
    except DataError:
        return []


def _column_indexes(path, header, line, needed, optional) -> dict[str, int]:
    """Column name -> index for the needed (checked) and optional columns."""
    found = ", ".join(repr(name) for name in header) or "none"
    indexes = {}
    for name in dict.fromkeys([*needed, *optional]):
        positions = [i for i, column in enumerate(header) if column == name]
        if len(positions) > 1:
            raise DataError(path, f"column '{name}' appears {len(positions)} times", row=line)
        if positions:
            indexes[name] = positions[0]
        elif name in needed:
            raise DataError(path, f"missing column '{name}' (columns found: {found})", row=line)
    return indexes


def _check_width(path, row, header, line):
    if len(row) != len(header):
        raise DataError(
            path,
            f"{_plural(len(row), 'field')} but the header has {_plural(len(header), 'column')}"
            + (" (an unquoted delimiter in a cell?)" if len(row) > len(header) else ""),
            row=line,
        )


def _is_blank(row) -> bool:
    return not any(cell.strip() for cell in row)


def _optional_cell(path, cell, column, line, unit, required):
    """The stripped cell; if it is empty or NaN-like, _MISSING, or a DataError if required."""
    value = cell.strip()
    if value and value not in _NA_CELLS:
        return value
    if not required:
        return _MISSING
    reason = f"empty {column}" if not value else f"missing value {value!r} in column '{column}'"
    raise DataError(path, reason, row=line, unit=unit)


def _all_or_none(path, values, lines, unit, reason, what):
    """Replaces _MISSING by None when all values are missing; else a missing one is an error."""
    missing = [i for i, value in enumerate(values) if value is _MISSING]
    if not missing:
        return values
    if len(missing) == len(values):
        return [None] * len(values)
    first = missing[0]
    raise DataError(path, f"{reason}, but other {unit}s have {what}", row=lines[first], unit=unit)


def _check_tags(path, tokens, tags, line, unit):
    if len(tags) != len(tokens):
        raise DataError(path, _count_pair(tokens, tags), row=line, unit=unit)
    for position, tag in enumerate(tags, start=1):
        problem = _tag_problem(tag)
        if problem:
            raise DataError(path, f"{problem}, tag {position} of {len(tags)}", line, unit)


def _tag_problem(tag) -> str | None:
    if tag == "O" or (len(tag) > 2 and tag[:2] in ("B-", "I-") and tag.split() == [tag]):
        return None
    return f"invalid tag {tag!r} (expected O, B-<slot> or I-<slot>)"


def _writable_problem(utterance: Utterance) -> str | None:
    if not utterance.tokens:
        return "no tokens"
    for token in utterance.tokens:
        if not isinstance(token, str) or token == "" or token.split() != [token]:
            return f"token {token!r} is empty, not a string or holds whitespace"
    for tag in utterance.tags or ():
        problem = _tag_problem(tag) if isinstance(tag, str) else f"tag {tag!r} is not a string"
        if problem:
            return problem
    intent = utterance.intent
    if intent is not None and (
        not isinstance(intent, str)
        or intent != intent.strip()
        or intent in _NA_CELLS
        or any(character in intent for character in "\r\n")
        or intent == ""
    ):
        return f"intent {intent!r} would not read back (empty, NaN-like or edge whitespace)"
    return None


def _atomic_write(path: Path, text: str) -> None:
    if path.is_dir():
        raise DataError(path, "is a folder, expected a file to write")
    atomic_write(path, text)


def _field_index(fields, index) -> int | None:
    position = index if index >= 0 else len(fields) + index
    return position if 0 <= position < len(fields) else None


def _listing(folder: Path) -> str:
    names = sorted(entry.name + ("/" if entry.is_dir() else "") for entry in folder.iterdir())
    return ", ".join(names) or "nothing"


def _show(value, column) -> str:
    return f"empty {column}" if value is _MISSING else f"{column} {value!r}"


def _plural(count, noun) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _count_pair(tokens: Sequence, tags: Sequence) -> str:
    return f"{_plural(len(tokens), 'token')} but {_plural(len(tags), 'tag')}"
