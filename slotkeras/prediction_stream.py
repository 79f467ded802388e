"""Prediction over a file, streamed: read a chunk, tag it, write it, flush, repeat.

A file's utterances are raw text, tagged by the model's own tokenizer exactly as
utterances typed on the command line are (`SlotFiller.tag_text`, the SavedModel's
graph): the same tokens, values and offsets. Which text:

- a plain text file (any suffix but those below): one utterance a line (an empty
  line gives an empty prediction, so outputs stay line for line with the input);
- a CSV or TSV: its text column, one utterance a row;
- a JSONL file: each record's text field;
- any annotated format (Label Studio JSON, Rasa YAML, Markdown, CoNLL, a seq.in
  folder): read by slotkeras.data, each utterance's text (or its tokens joined by
  spaces).

`pretokenized` keeps the corpus's own tokens instead (`SlotFiller.predict`).
The first three are read in chunks of `CHUNK` utterances: memory stays constant
however long the file. The file is checked whole before anything is tagged (a
cheap pass), so malformed input is one error line and no output.
"""

from __future__ import annotations

import csv
import io
import os
import secrets
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from slotkeras.text_files import BINARY, binary_problem, csv_rows, json_line, reading
from slotkeras.utterance import DataError

CHUNK = 256  # utterances read, tagged and written at a time
# Chunks served at once on worker threads, ahead of the one being written: one call of
# the serving graph leaves the cores partly idle (docs/benchmarks.md, "Predicting a
# large file"), and each chunk in flight costs one chunk's memory, so memory stays
# constant.
AHEAD = 2
_CSV_SUFFIXES = (".csv", ".tsv")
_JSONL_SUFFIXES = (".jsonl", ".ndjson")
_READ_WHOLE = (".json", ".md", ".markdown", ".yml", ".yaml", ".conll", ".bio", ".iob")


class _CountingReader(io.RawIOBase):
    """A binary file that counts the bytes read from it (the progress bar's share)."""

    def __init__(self, raw):
        self.raw, self.count = raw, 0

    def readable(self):
        return True

    def readinto(self, buffer):
        read = self.raw.readinto(buffer)
        self.count += read or 0
        return read

    def close(self):
        self.raw.close()
        super().close()


def kind_of(
    path, format: str = "auto", pretokenized: bool = False, text_column: str = "text"
) -> str:
    """How a file's utterances are read: `lines`, `csv`, `jsonl` (streamed raw text),
    or `read` (by slotkeras.data, whole)."""
    path = Path(path)
    if pretokenized or path.is_dir() or format not in ("auto", "utterance_csv", "jsonl"):
        return "read"
    if format == "utterance_csv":
        return "csv"
    suffix = path.suffix.lower()
    if format == "jsonl" or suffix in _JSONL_SUFFIXES:
        return "jsonl"
    if suffix in _CSV_SUFFIXES:
        # A token CSV (a token a row) is a corpus: read whole, its tokens joined.
        return "read" if _is_token_csv(path, text_column) else "csv"
    return "read" if suffix in _READ_WHOLE else "lines"


def _is_token_csv(path: Path, text_column: str) -> bool:
    """Whether a CSV's header names a `token` column and no text column."""
    try:
        with open(path, "rb") as handle:
            first = handle.readline(1 << 16).decode("utf-8-sig", "replace")
    except OSError:
        return False  # reading it again reports the error in one line
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    header = [name.strip() for name in next(csv.reader([first], delimiter=delimiter), [])]
    return "token" in header and text_column not in header


def text_chunks(path, kind: str, text_column: str = "text", chunk: int = CHUNK, counter=None):
    """The raw texts of a `lines`, `csv` or `jsonl` file in lists of up to `chunk`;
    `counter` (a list) gets the reader that counts the bytes read."""
    path = Path(path)
    with reading(path):
        raw = _CountingReader(open(path, "rb", buffering=0))  # noqa: SIM115
    if counter is not None:
        counter.append(raw)
    with io.BufferedReader(raw) as handle:
        texts = {"lines": _lines, "csv": _csv_texts, "jsonl": _jsonl_texts}[kind]
        yield from _chunked(texts(path, handle, text_column), chunk)


def _chunked(items: Iterable, size: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _decoded(path, data: bytes, number: int) -> str:
    if number == 1:
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise DataError(path, "UTF-16 text, expected UTF-8 (save it as UTF-8)")
        data = data.removeprefix(b"\xef\xbb\xbf")
    problem = binary_problem(data) if number == 1 else None
    if problem or b"\0" in data:
        raise DataError(path, problem or BINARY)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(
            path, f"not valid UTF-8 (byte 0x{data[error.start]:02x})", row=number, unit="line"
        ) from None


def _lines(path, handle, text_column):
    for number, data in enumerate(handle, start=1):
        yield _decoded(path, data, number).rstrip("\r\n")


def _jsonl_texts(path, handle, text_column):
    for number, data in enumerate(handle, start=1):
        record = json_line(path, number, _decoded(path, data, number))
        if record is None:
            continue
        text = record.get(text_column)
        if not isinstance(text, str):
            raise DataError(path, f"no {text_column!r} string", row=number, unit="line")
        yield text


def _csv_texts(path, handle, text_column):
    problem = binary_problem(handle.peek(512)[:512])  # a workbook saved as .csv, say
    if problem:
        raise DataError(path, problem)
    delimiter = "\t" if Path(path).suffix.lower() == ".tsv" else ","
    stream = io.TextIOWrapper(handle, encoding="utf-8-sig", newline="")
    index = None
    for start, row in csv_rows(path, stream, delimiter):
        if "\0" in "".join(row):
            raise DataError(path, BINARY)
        if index is None and any(cell.strip() for cell in row):
            header = [name.strip() for name in row]
            if text_column not in header:
                found = ", ".join(repr(name) for name in header)
                raise DataError(path, f"missing column '{text_column}' (columns: {found})", start)
            index, width = header.index(text_column), len(header)
        elif index is not None and any(cell.strip() for cell in row):
            if len(row) != width:
                raise DataError(path, f"{len(row)} fields but the header has {width}", start)
            yield row[index]
    if index is None:
        raise DataError(path, "empty file")


class Progress:
    """A one-line progress bar on stderr, drawn only when stderr is a terminal."""

    def __init__(self, total_bytes: int | None, stream=None):
        self.stream = stream or sys.stderr
        self.total = total_bytes
        self.shown = bool(getattr(self.stream, "isatty", lambda: False)())
        self.count = 0

    def update(self, utterances: int, bytes_read: int | None = None) -> None:
        self.count += utterances
        if not self.shown:
            return
        line = f"\rpredict: {self.count:,} utterances"
        if self.total and bytes_read is not None:
            share = min(bytes_read / self.total, 1.0)
            filled = int(share * 30)
            line += f" [{'#' * filled}{'.' * (30 - filled)}] {100 * share:3.0f}%"
        self.stream.write(line)
        self.stream.flush()

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


@contextmanager
def output_stream(path):
    """stdout (None), or `path` written through a temporary file of its folder and
    renamed into place when complete: on any error the old file stays."""
    if path is None:
        yield sys.stdout
        return
    path = Path(path)
    if path.is_dir():
        raise DataError(path, "is a folder, expected a file to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        with open(temporary, "w", encoding="utf-8", newline="\n") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def check_source(source, kind, reader_options=None):
    """Reads the whole file once, checking it, before anything is tagged or written
    (and before TensorFlow loads): the utterances of a `read` file, else None (a
    streamed file is read again, chunk by chunk, when tagged)."""
    options = dict(reader_options or {})
    if kind == "read":
        from slotkeras.data import read_utterances

        return read_utterances(source, require_tags=False, **options)
    for _ in text_chunks(source, kind, options.get("text_column", "text")):
        pass
    return None


def prediction_batches(filler, source, *, kind, utterances=None, pretokenized=False,
                       text_column="text", progress=True):  # fmt: skip
    """The predictions of a file's utterances, a list a chunk, in file order. `kind`:
    as `kind_of` says; `utterances`: what `check_source` read of a `read` file;
    `progress`: draw the progress bar (on a terminal)."""
    if kind == "read":
        batches = _chunked(utterances, CHUNK)
        if pretokenized:
            yield from (filler.predict([list(u.tokens) for u in batch]) for batch in batches)
            return
        texts = ([u.text or " ".join(u.tokens) for u in batch] for batch in batches)
        for chunk, served in _one_ahead(texts, filler.serve_text):
            yield filler.text_predictions(chunk, served)
        return
    counter = []
    bar = Progress(Path(source).stat().st_size if progress else None)
    bar.shown = bar.shown and progress
    chunks = text_chunks(source, kind, text_column, counter=counter)
    for texts, served in _one_ahead(chunks, filler.serve_text):
        yield filler.text_predictions(texts, served)
        bar.update(len(texts), counter[0].count)
    bar.close()


def _one_ahead(chunks: Iterable[list], serve) -> Iterator[tuple[list, dict]]:
    """`(chunk, serve(chunk))` in order, the next `AHEAD` chunks served on worker
    threads while the caller turns this one into output: TensorFlow runs its graph
    without holding the GIL, so the model's work overlaps the Python that builds and
    writes the predictions, and two calls of the graph keep both cores busy."""
    with ThreadPoolExecutor(max_workers=AHEAD, thread_name_prefix="slotkeras-serve") as pool:
        pending = deque()
        for chunk in chunks:
            pending.append((chunk, pool.submit(serve, chunk)))
            if len(pending) > AHEAD:
                chunk, future = pending.popleft()
                yield chunk, future.result()
        while pending:
            chunk, future = pending.popleft()
            yield chunk, future.result()


def predict_file(filler, source, writer, **options) -> int:
    """Tags a file's utterances chunk by chunk and writes each chunk's predictions
    (`writer`: a `PredictionWriter`; `options`: as `prediction_batches` takes them).
    Returns how many were tagged."""
    count = 0
    for predictions in prediction_batches(filler, source, **options):
        writer.write(predictions)
        count += len(predictions)
    return count
