"""What an utterance is: `Utterance` (tokens, BIO tags, intent, and the raw text with
each token's offsets when it was read from raw text), `DataError` (one malformed input,
named by file, row and reason) and the checks of tags that every reader and writer
shares. No TensorFlow, Keras or pandas here: the readers import fast."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

# Whole cells that are a missing value written out by a spreadsheet or by
# pandas (`str(float("nan"))`, `str(None)`, ...), not data.
NA_CELLS = frozenset({"nan", "NaN", "NAN", "None", "null", "NULL", "<NA>", "N/A", "n/a", "#N/A"})
# For single tokens only the unambiguous ones: "none" or "null" can be words.
NA_TOKENS = frozenset({"nan", "NaN", "NAN", "<NA>"})


@dataclass(frozen=True)
class Utterance:
    """One utterance: its tokens, one BIO tag per token, and its intent.

    Args:
        tokens: the words, a tuple of non-empty strings without whitespace.
        tags: one tag per token (`O`, `B-<slot>`, `I-<slot>`), or `None`
            (default) when the input has no tags (prediction input).
        intent: the utterance's intent, or `None` (default) when the input
            has none.
        text: the raw text the tokens were cut from, or `None` (default) when
            the input was tokenized already.
        starts, ends: each token's code point offsets in `text` (end
            exclusive; `text[starts[i]:ends[i]] == tokens[i]`), with `text`.

    Lists are accepted and stored as tuples, so utterances compare equal and
    are hashable. Two utterances are equal when their tokens, tags and intents
    are: the text and offsets say where an utterance came from, not what it is.
    """

    tokens: tuple[str, ...]
    tags: tuple[str, ...] | None = None
    intent: str | None = None
    text: str | None = field(default=None, compare=False)
    starts: tuple[int, ...] | None = field(default=None, compare=False)
    ends: tuple[int, ...] | None = field(default=None, compare=False)

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
                    f"{count_pair(self.tokens, self.tags)}."
                )
        if (self.text is None) != (self.starts is None) or (self.starts is None) != (
            self.ends is None
        ):
            raise ValueError("An Utterance's text, starts and ends come together.")
        if self.text is not None:
            object.__setattr__(self, "starts", tuple(self.starts))
            object.__setattr__(self, "ends", tuple(self.ends))
            cut = [self.text[s:e] for s, e in zip(self.starts, self.ends)]
            if len(self.starts) != len(self.tokens) or tuple(cut) != self.tokens:
                raise ValueError(
                    "An Utterance's offsets must cut its tokens from its text, got "
                    f"{cut!r} for the tokens {list(self.tokens)!r}."
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


def tag_problem(tag) -> str | None:
    if tag == "O" or (len(tag) > 2 and tag[:2] in ("B-", "I-") and tag.split() == [tag]):
        return None
    return f"invalid tag {tag!r} (expected O, B-<slot> or I-<slot>)"


def check_tags(path, tokens, tags, line, unit):
    if len(tags) != len(tokens):
        raise DataError(path, count_pair(tokens, tags), row=line, unit=unit)
    for position, tag in enumerate(tags, start=1):
        problem = tag_problem(tag)
        if problem:
            raise DataError(path, f"{problem}, tag {position} of {len(tags)}", line, unit)


def writable_problem(utterance: Utterance) -> str | None:
    if not utterance.tokens:
        return "no tokens"
    for token in utterance.tokens:
        if not isinstance(token, str) or token == "" or token.split() != [token]:
            return f"token {token!r} is empty, not a string or holds whitespace"
    for tag in utterance.tags or ():
        problem = tag_problem(tag) if isinstance(tag, str) else f"tag {tag!r} is not a string"
        if problem:
            return problem
    intent = utterance.intent
    if intent is not None and (
        not isinstance(intent, str)
        or intent != intent.strip()
        or intent in NA_CELLS
        or any(character in intent for character in "\r\n")
        or intent == ""
    ):
        return f"intent {intent!r} would not read back (empty, NaN-like or edge whitespace)"
    return None


def plural(count, noun) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def count_pair(tokens: Sequence, tags: Sequence) -> str:
    return f"{plural(len(tokens), 'token')} but {plural(len(tags), 'tag')}"
