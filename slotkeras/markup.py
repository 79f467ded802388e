"""Inline markup: slots marked in the text itself, as Rasa writes them.

`show me flights to [boston](toloc.city_name)`, also `[boston]{"entity":
"toloc.city_name"}` (the `role`, `group` and `value` keys are read past) and Rasa's
synonym form `[NYC](city:New York)` (the slot is before the colon). A `[` that does
not open such a mark is text; `\\[`, `\\]` and `\\\\` are a literal `[`, `]` and `\\`
(the writer escapes them, so any text reads back as written).

Read from a CSV whose `text` column holds markup and which has no `tags` column
(`intent` optional), or from a Markdown list, one utterance an item, under `## intent:NAME`
headings (Rasa's NLU Markdown; `## synonym:`, `## regex:` and `## lookup:` sections
are skipped; a list with no heading has no intents).
"""

from __future__ import annotations

import dataclasses
import json
import re

from slotkeras.span_alignment import Place, Span, utterance_from_spans
from slotkeras.text_files import (
    MISSING,
    all_or_none,
    check_width,
    column_indexes,
    csv_header,
    csv_records,
    is_blank,
    optional_cell,
    split_lines,
)
from slotkeras.utterance import DataError

ESCAPED = "\\[]"
# A plain slot name in `(slot)`; any other is written `{"entity": "slot"}`.
_PLAIN_SLOT = re.compile(r"[^\s()\[\]{}:\\]+")
# What makes a CSV's text column markup (the detector's test).
MARKUP_PATTERN = re.compile(r"\[[^\[\]]+\](\([^()\s]+\)|\{[^{}]+\})")
_HEADING = re.compile(r"##\s*(intent|synonym|regex|lookup)\s*:\s*(.*)$")
_COMMENT = re.compile(r"<!--.*?-->")


class MarkupError(ValueError):
    """A mark that cannot be read; the reader adds the file and line."""


def parse_markup(line: str) -> tuple[str, list[Span]]:
    """The plain text of a line of markup and its slots as character spans."""
    text, spans, i = [], [], 0
    while i < len(line):
        char = line[i]
        if char == "\\" and i + 1 < len(line) and line[i + 1] in ESCAPED:
            text.append(line[i + 1])
            i += 2
            continue
        if char == "[":
            parsed = _mark(line, i)
            if parsed is not None:
                value, slot, i = parsed
                spans.append(Span(len(text), len(text) + len(value), slot))
                text.extend(value)
                continue
        text.append(char)
        i += 1
    return "".join(text), spans


def _mark(line: str, i: int):
    """`(value, slot, next index)` of the mark opening at `line[i]` ("["), or None
    when it is no mark."""
    value, j = [], i + 1
    while j < len(line) and line[j] != "]":
        if line[j] == "\\" and j + 1 < len(line) and line[j + 1] in ESCAPED:
            value.append(line[j + 1])
            j += 2
            continue
        if line[j] == "[":
            return None
        value.append(line[j])
        j += 1
    if j + 1 >= len(line) or not value:
        return None
    opener, start = line[j + 1], j + 2
    if opener == "(":
        end = line.find(")", start)
        slot = line[start:end].split(":", 1)[0].strip() if end >= 0 else ""
        return (value, slot, end + 1) if _PLAIN_SLOT.fullmatch(slot) else None
    if opener == "{":
        end = line.find("}", start)
        return None if end < 0 else (value, _entity(line[j + 1 : end + 1], value), end + 1)
    if opener == "[" and line[start:].lstrip().startswith("{"):
        end = line.find("}]", start)
        return None if end < 0 else (value, _entity(line[j + 1 : end + 2], value), end + 2)
    return None


def _entity(source: str, value: list[str]) -> str:
    """The slot of a `{"entity": ...}` mark (or a list of one such)."""
    value = "".join(value)
    try:
        parsed = json.loads(source)
    except json.JSONDecodeError as error:
        raise MarkupError(f"the mark of {value!r}, {source}, is not JSON ({error.msg})") from None
    if isinstance(parsed, list):
        if len(parsed) != 1:
            raise MarkupError(
                f"{len(parsed)} entities on {value!r} overlap (a token takes one slot)"
            )
        parsed = parsed[0]
    slot = parsed.get("entity") if isinstance(parsed, dict) else None
    if not isinstance(slot, str) or not slot.strip():
        raise MarkupError(f'the mark of {value!r}, {source}, has no "entity"')
    return slot


def render_markup(text: str, spans: list[Span]) -> str:
    """`text` with its spans marked inline; `parse_markup` reads it back."""
    out, position = [], 0
    for span in sorted(spans, key=lambda s: s.start):
        out.append(_escaped(text[position : span.start]))
        mark = f"({span.slot})" if _PLAIN_SLOT.fullmatch(span.slot) else None
        if mark is None:
            mark = json.dumps({"entity": span.slot}, ensure_ascii=False)
        out.append(f"[{_escaped(text[span.start : span.end])}]{mark}")
        position = span.end
    out.append(_escaped(text[position:]))
    return "".join(out)


def _escaped(text: str) -> str:
    return "".join("\\" + c if c in ESCAPED else c for c in text)


def has_markup(text: str) -> bool:
    return MARKUP_PATTERN.search(text) is not None


def markup_utterance(line, place, intent, options):
    """The utterance of a line of markup (`options` as `utterance_from_spans` takes them)."""
    try:
        text, spans = parse_markup(line)
    except MarkupError as error:
        raise place.error(str(error)) from None
    return utterance_from_spans(text, spans, intent, place, **options)


def read_markup_csv(path, text, delimiter, *, text_column, intent_column, **options):
    """Utterances of a CSV whose text column holds inline markup.

    `options`: `rules`, `misaligned` and `report`, as `utterance_from_spans` takes them."""
    rows = csv_records(path, text, delimiter)
    header_line, header = csv_header(path, rows)
    columns = column_indexes(path, header, header_line, [text_column], [intent_column])
    utterances, intents, lines = [], [], []
    for line, row in rows:
        if is_blank(row):
            continue
        check_width(path, row, header, line)
        cell = row[columns[text_column]]
        if not cell.strip():
            raise DataError(path, f"empty {text_column}", row=line)
        intent = None
        if intent_column in columns:
            intent = optional_cell(
                path, row[columns[intent_column]], intent_column, line, "row", False
            )
        utterances.append(markup_utterance(cell, Place(path, line, "row"), None, options))
        intents.append(intent)
        lines.append(line)
    if not utterances:
        raise DataError(path, "no data rows (header only)")
    intents = all_or_none(path, intents, lines, "row", f"empty {intent_column}", "an intent")
    return [_with_intent(u, i) for u, i in zip(utterances, intents, strict=True)]


def read_markdown(path, text, **options):
    """Utterances of a Markdown list of inline markup (Rasa's NLU Markdown)."""
    utterances, intents, lines = [], [], []
    section = None  # ("intent", NAME), ("skip", None), or None before any heading
    for number, line in enumerate(split_lines(text), start=1):
        stripped = _COMMENT.sub("", line).strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            section = _heading(path, number, stripped, section)
            continue
        if stripped[0] not in "-*+" or stripped[1:2] not in ("", " ", "\t"):
            raise DataError(
                path,
                f"expected a list item '- text' or a heading '## intent:NAME', got {line!r}",
                row=number,
                unit="line",
            )
        if section is not None and section[0] == "skip":
            continue
        item = stripped[1:].strip()
        if not item:
            raise DataError(path, "empty list item", row=number, unit="line")
        place = Place(path, number, "line")
        utterances.append(markup_utterance(item, place, None, options))
        intents.append(section[1] if section else MISSING)
        lines.append(number)
    if not utterances:
        raise DataError(path, "no list items (utterances: '- text')")
    intents = all_or_none(path, intents, lines, "line", "no '## intent:' above it", "an intent")
    return [_with_intent(u, i) for u, i in zip(utterances, intents, strict=True)]


def _heading(path, number, stripped, section):
    """The section a heading opens: an intent's, a skipped one, or (a title, `# ...`)
    the one before it."""
    match = _HEADING.match(stripped)
    if match is None:
        if stripped.startswith("##"):
            raise DataError(
                path,
                f"a heading other than '## intent:NAME' (or synonym:, regex:, lookup:): "
                f"{stripped!r}",
                row=number,
                unit="line",
            )
        return section  # a title
    kind, name = match.group(1), match.group(2).strip()
    if kind != "intent":
        return ("skip", None)
    if not name:
        raise DataError(path, "'## intent:' without a name", row=number, unit="line")
    return ("intent", name)


def _with_intent(utterance, intent):
    return utterance if intent is None else dataclasses.replace(utterance, intent=intent)
