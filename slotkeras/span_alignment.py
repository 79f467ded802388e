"""Character spans over raw text to BIO tags on its tokens, and back.

Annotation tools export a slot as a span of characters: `(start, end, slot)`, code
point offsets, end exclusive. `utterance_from_spans` tokenizes the text
(slotkeras.raw_text) and tags the tokens each span covers `B-slot`, `I-slot`, ...
Whitespace at a span's edges is trimmed. A span that starts or ends inside a token
is an error (`span 5-9 "Bost" cuts the token "Boston"`) unless `misaligned` is
`skip` (left out) or `expand` (widened to the whole tokens); either way a report
line names it. Overlapping or nested spans are an error naming both.
`spans_of` goes back: the character spans of an utterance's tags.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

from slotkeras.raw_text import READING_RULES, TextRules
from slotkeras.tag_schemes import iob_spans
from slotkeras.utterance import DataError, Utterance

# What to do with a span that starts or ends inside a token.
MISALIGNED = ("error", "skip", "expand")


@dataclass(frozen=True)
class Place:
    """Where a record is: its file, its row (or line, or task) number and the unit's
    name, for errors and report lines that name it."""

    path: object
    row: int | None = None
    unit: str = "line"

    def error(self, reason: str) -> DataError:
        return DataError(self.path, reason, row=self.row, unit=self.unit)

    def line(self, reason: str) -> str:
        return str(self.error(reason))


class Report:
    """The lines a reader reports (spans it skipped or widened): collected while a
    file is read and shown once it has been read whole, so a file that turns out
    malformed shows its one error line only."""

    def __init__(self):
        self.lines: list[str] = []

    def add(self, line: str) -> None:
        self.lines.append(line)

    def show(self, stream=None) -> None:
        for line in self.lines:
            print(f"warning: {line}", file=stream or sys.stderr)


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    slot: str


def utterance_from_spans(
    text: str,
    spans: Sequence[Span],
    intent: str | None,
    place: Place,
    *,
    rules: TextRules = READING_RULES,
    misaligned: str = "error",
    report: Report | None = None,
    tokens: Sequence[tuple[str, int, int]] | None = None,
) -> Utterance:
    """The utterance of `text` with `spans` as BIO tags on its tokens.

    Args:
        text: the raw text.
        spans: the slots, character spans over `text`.
        intent: the utterance's intent or None.
        place: where the record is, for errors and report lines.
        rules: how `text` is split into tokens (default: `READING_RULES`).
        misaligned: `error` (default), `skip` or `expand`: a span that cuts a token.
        report: where skipped and widened spans are reported.
        tokens: `(token, start, end)` triples given with the record, which replace
            the rules' tokens.

    Raises:
        DataError: an empty text, a span outside the text, a misaligned span (by
            default), overlapping spans.
    """
    tokens = list(tokens) if tokens is not None else rules.tokenize(text)
    if not tokens:
        raise place.error("empty text (no tokens)")
    covering = [-1] * len(text)  # character -> its token, -1 between tokens
    for index, (_, start, end) in enumerate(tokens):
        covering[start:end] = [index] * (end - start)
    placed = []  # (first token, end token, span)
    for span in spans:
        _check_span(text, span, place)
        first, last = _token_range(text, span, tokens, covering, place, misaligned, report)
        if first is not None:
            placed.append((first, last, span))
    tags = ["O"] * len(tokens)
    for first, last, span in _without_overlaps(text, placed, place):
        tags[first:last] = [f"B-{span.slot}"] + [f"I-{span.slot}"] * (last - first - 1)
    return Utterance(
        [t for t, _, _ in tokens],
        tags,
        intent,
        text=text,
        starts=[s for _, s, _ in tokens],
        ends=[e for _, _, e in tokens],
    )


def _shown(text: str, span: Span) -> str:
    return f'span {span.start}-{span.end} "{text[span.start : span.end]}"'


def _check_span(text: str, span: Span, place: Place) -> None:
    for value in (span.start, span.end):
        if not isinstance(value, int) or isinstance(value, bool):
            raise place.error(f"span {span.start!r}-{span.end!r}: offsets must be integers")
    if not isinstance(span.slot, str) or not span.slot.strip():
        raise place.error(f"{_shown(text, span)} has no slot name (got {span.slot!r})")
    if span.slot.split() != [span.slot]:
        raise place.error(f"{_shown(text, span)}: slot name {span.slot!r} holds whitespace")
    if not 0 <= span.start < span.end <= len(text):
        raise place.error(
            f"span {span.start}-{span.end} does not fit the text ({len(text)} characters; "
            "offsets are code points, end exclusive)"
        )
    if not text[span.start : span.end].strip():
        raise place.error(f"{_shown(text, span)} holds only whitespace")


def _token_range(text, span, tokens, covering, place, misaligned, report):
    """The tokens a span covers, `(first, end)`, after trimming its edge whitespace;
    `(None, None)` for a misaligned span that is skipped."""
    start, end = span.start, span.end
    while text[start].isspace():
        start += 1
    while text[end - 1].isspace():
        end -= 1
    first, last = covering[start], covering[end - 1]
    cut = None
    if tokens[first][1] != start:
        cut = tokens[first][0]
    elif tokens[last][2] != end:
        cut = tokens[last][0]
    if cut is None:
        return first, last + 1
    reason = f'{_shown(text, span)} cuts the token "{cut}"'
    if misaligned == "error":
        raise place.error(
            reason + " (--misaligned-spans skip leaves such spans out, expand widens them)"
        )
    if misaligned == "skip":
        if report is not None:
            report.add(place.line(reason + ": left out"))
        return None, None
    wide_start, wide_end = tokens[first][1], tokens[last][2]
    if report is not None:
        shown = text[wide_start:wide_end]
        report.add(place.line(reason + f': widened to {wide_start}-{wide_end} "{shown}"'))
    return first, last + 1


def _without_overlaps(text, placed, place):
    """The placed spans in order, each once (an exact repeat, same tokens and slot,
    adds nothing); overlapping or nested ones are an error."""
    kept = []
    for first, last, span in sorted(placed, key=lambda p: (p[0], p[1])):
        if kept and (first, last, span.slot) == (kept[-1][0], kept[-1][1], kept[-1][2].slot):
            continue
        if kept and first < kept[-1][1]:
            raise place.error(
                f"{_shown(text, kept[-1][2])} and {_shown(text, span)} overlap "
                "(a token takes one slot)"
            )
        kept.append((first, last, span))
    return kept


def spans_of(utterance: Utterance) -> list[Span]:
    """The character spans of an utterance read from raw text (or given offsets),
    one per BIO span of its tags (conlleval semantics: an `I-x` after `O` opens
    one)."""
    if utterance.text is None or utterance.tags is None:
        return []
    return [
        Span(utterance.starts[first], utterance.ends[last - 1], slot)
        for slot, first, last in iob_spans(utterance.tags)
    ]


def with_text(utterance: Utterance, joiner: str = " ") -> Utterance:
    """The utterance with a raw text: its own, or its tokens joined by `joiner`."""
    if utterance.text is not None:
        return utterance
    starts, ends, position = [], [], 0
    for token in utterance.tokens:
        starts.append(position)
        ends.append(position + len(token))
        position += len(token) + len(joiner)
    return Utterance(
        utterance.tokens,
        utterance.tags,
        utterance.intent,
        text=joiner.join(utterance.tokens),
        starts=starts,
        ends=ends,
    )
