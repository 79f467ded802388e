"""Text files as the readers take them: UTF-8 (a BOM and CRLF line ends accepted),
lines, CSV records with the line each starts on, header columns, and the checks of
cells that every CSV reader shares; each problem a `DataError` naming file, row and
reason."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

from slotkeras.utterance import NA_CELLS, DataError, plural

UTF8_BOM = b"\xef\xbb\xbf"
BINARY = "binary file, not text"


def binary_problem(data: bytes) -> str | None:
    """What is wrong with a file that starts with `data`, if it is not text."""
    if data.startswith(b"PK\x03\x04"):
        return f"{BINARY} (a zip archive: an Excel workbook? save it as CSV UTF-8)"
    return BINARY if b"\0" in data else None


class _Missing:
    """Marks an empty optional cell until the whole file is seen."""

    def __repr__(self):
        return "<missing>"


MISSING = _Missing()


@contextlib.contextmanager
def reading(path):
    """Turns an error of opening or reading `path` into one `DataError` line."""
    try:
        yield
    except FileNotFoundError:
        raise DataError(path, "no such file") from None
    except IsADirectoryError:
        raise DataError(path, "is a folder, expected a file") from None
    except PermissionError:
        raise DataError(path, "permission denied") from None
    except OSError as error:
        raise DataError(path, f"cannot read it: {error.strerror or error}") from None


def read_text(path: Path) -> str:
    """The file decoded as UTF-8 (a BOM dropped), or a DataError."""
    with reading(path):
        data = path.read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(path, "UTF-16 text, expected UTF-8 (save it as UTF-8)")
    problem = binary_problem(data)
    if problem:
        raise DataError(path, problem)
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM) :]
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


def split_lines(text: str) -> list[str]:
    """Lines split at \\n, \\r\\n or \\r (as the csv module does), no final empty line."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def text_lines(path: Path) -> list[str]:
    """The lines of a seq.in / seq.out / label file, trailing blank lines dropped."""
    if path.is_dir():
        raise DataError(path, "is a folder, expected a file")
    lines = split_lines(read_text(path))
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def csv_records(path, text, delimiter) -> Iterator[tuple[int, list[str]]]:
    """(line where the record starts, fields) for each CSV record."""
    if text.strip() == "":
        raise DataError(path, "empty file")
    yield from csv_rows(path, io.StringIO(text, newline=""), delimiter)


def csv_rows(path, stream, delimiter) -> Iterator[tuple[int, list[str]]]:
    """The CSV records of a text stream, each with the line it starts on; a quoting
    error, or bytes that are not UTF-8, is a DataError naming that line."""
    reader = csv.reader(stream, delimiter=delimiter, strict=True)
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise DataError(path, f"CSV quoting error: {error}", row=start) from None
        except UnicodeDecodeError:
            raise DataError(path, "not valid UTF-8", row=start) from None
        yield start, row
        start = reader.line_num + 1


def csv_header(path, rows) -> tuple[int, list[str]]:
    for line, row in rows:
        if not is_blank(row):
            return line, [name.strip() for name in row]
    raise DataError(path, "empty file")


def peek_header(text, delimiter) -> list[str]:
    """The header names, or [] when the header cannot be parsed (the reader reports it)."""
    try:
        return csv_header("", csv_records("", text, delimiter))[1]
    except DataError:
        return []


def column_indexes(path, header, line, needed, optional) -> dict[str, int]:
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


def check_width(path, row, header, line):
    if len(row) != len(header):
        raise DataError(
            path,
            f"{plural(len(row), 'field')} but the header has {plural(len(header), 'column')}"
            + (" (an unquoted delimiter in a cell?)" if len(row) > len(header) else ""),
            row=line,
        )


def is_blank(row) -> bool:
    return not any(cell.strip() for cell in row)


def optional_cell(path, cell, column, line, unit, required):
    """The stripped cell; if it is empty or NaN-like, MISSING, or a DataError if required."""
    value = cell.strip()
    if value and value not in NA_CELLS:
        return value
    if not required:
        return MISSING
    reason = f"empty {column}" if not value else f"missing value {value!r} in column '{column}'"
    raise DataError(path, reason, row=line, unit=unit)


def required_cell(path, cell: str, column: str, line: int, missing=NA_CELLS) -> str:
    """A cell that must hold a value: stripped, neither empty nor in `missing`."""
    cell = cell.strip()
    if cell == "":
        raise DataError(path, f"empty {column}", row=line)
    if cell in missing:
        raise DataError(path, f"missing value {cell!r} in column '{column}'", row=line)
    return cell


def all_or_none(path, values, lines, unit, reason, what):
    """Replaces MISSING by None when all values are missing; else a missing one is an error."""
    missing = [i for i, value in enumerate(values) if value is MISSING]
    if not missing:
        return values
    if len(missing) == len(values):
        return [None] * len(values)
    first = missing[0]
    raise DataError(path, f"{reason}, but other {unit}s have {what}", row=lines[first], unit=unit)


def show(value, column) -> str:
    return f"empty {column}" if value is MISSING else f"{column} {value!r}"


def listing(folder: Path) -> str:
    names = sorted(entry.name + ("/" if entry.is_dir() else "") for entry in folder.iterdir())
    return ", ".join(names) or "nothing"


def json_line(path, number: int, line: str):
    """The JSON object on line `number` of a JSONL file, or None for a blank line."""
    if not line.strip():
        return None
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise DataError(path, f"not JSON ({error.msg})", row=number, unit="line") from None
    if not isinstance(record, dict):
        raise DataError(path, "expected a JSON object", row=number, unit="line")
    return record
