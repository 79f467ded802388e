"""Raw text to tokens in plain Python, by the rules of the graph tokenizer.

`slotkeras.tokenizer.Tokenizer` splits what people type in the TensorFlow graph, with
three choices fitted on the training tokens. The readers of spans over raw text
(slotkeras.span_formats) tokenize too, before any model exists and without
TensorFlow: `TextRules` applies the same three choices with the same character
classes, so a text gives the same tokens and code point offsets here as in the graph
(tests/test_raw_text.py compares them):

* `characters`: every character that is not whitespace is a token;
* `cjk_characters`: each CJK character (Han, Hiragana, Katakana, Hangul syllables,
  CJK and full-width punctuation) is a token, the rest is split into words;
* `keep`: lower-cased words that keep their leading or trailing marks (`st.`).
  Elsewhere the marks that close or open a word (`? ! . , ; :`, quotes, brackets)
  are split off, one token per mark; marks inside a word (`o'clock`, `5:30`) stay.

`READING_RULES`, the readers' default, splits off marks and writes CJK a character a
token, with no kept words: `"Fly to St. Louis?"` is `Fly to St . Louis ?` and
`"来张信哲的歌"` six tokens.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

# The character classes, for this module and for slotkeras.tokenizer's graph (which
# imports them from here: the readers must not import TensorFlow).
# What `str.isspace()` is true for: the readers split training text with `str.split()`.
WHITESPACE = frozenset(chr(c) for c in range(0x3001) if chr(c).isspace())
# CJK scripts written without spaces; each character is one token in such corpora.
CJK_RANGES = (
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3400, 0x4DBF),  # CJK Unified Ideographs Extension A
    (0x4E00, 0x9FFF),  # CJK Unified Ideographs
    (0xAC00, 0xD7AF),  # Hangul syllables
    (0xF900, 0xFAFF),  # CJK Compatibility Ideographs
)
SUPPLEMENTARY_CJK = (0x20000, 0x3FFFF)  # Supplementary Ideographic Planes
# Punctuation of CJK text: a token of its own wherever CJK characters are.
CJK_PUNCTUATION_RANGES = (
    (0x3000, 0x303F),  # CJK symbols and punctuation (U+3000, a space, stays a space)
    (0xFF01, 0xFF0F),  # full-width ! " # $ % & ' ( ) * + , - . /
    (0xFF1A, 0xFF20),  # full-width : ; < = > ? @
    (0xFF3B, 0xFF40),  # full-width [ \ ] ^ _ `
    (0xFF5B, 0xFF65),  # full-width { | } ~ and half-width CJK punctuation
)
# Marks that close or open a word: split off its edges unless the lexicon has the word.
MARKS = "?!.,;:\"'()[]{}«»“”‘’„‚‹›¿¡…？！。，、；：（）［］｛｝「」『』【】〈〉《》"
_MARK_SET = frozenset(MARKS)
CHARACTER_LEVEL = 0.95  # share of single-character tokens of a character-level corpus
# Edge marks tried, fewest first, as the ones that belong to a kept word
# ("St.?" -> "St." "?"): (leading, trailing) counts peeled before the lookup.
PEELS = ((0, 0), (0, 1), (1, 0), (1, 1), (0, 2), (2, 0), (1, 2), (2, 1), (2, 2), (0, 3))


def raw_whitespace() -> tuple[int, ...]:
    """The whitespace code points, in order."""
    return tuple(sorted(ord(char) for char in WHITESPACE))


def is_cjk(char: str) -> bool:
    """A CJK character written without spaces (punctuation not included)."""
    code = ord(char)
    return any(lo <= code <= hi for lo, hi in (*CJK_RANGES, SUPPLEMENTARY_CJK))


@functools.lru_cache(maxsize=4096)
def _solo_cjk(char: str) -> bool:
    """A character that is a token of its own in `cjk_characters` text: CJK, or CJK
    punctuation (below the supplementary planes, as the graph's class table has it)."""
    if char in WHITESPACE:
        return False
    code = ord(char)
    if code >= 0x10000:
        return SUPPLEMENTARY_CJK[0] <= code <= SUPPLEMENTARY_CJK[1]
    return any(lo <= code <= hi for lo, hi in CJK_RANGES + CJK_PUNCTUATION_RANGES)


def has_edge_mark(token: str) -> bool:
    return len(token) > 1 and (token[0] in _MARK_SET or token[-1] in _MARK_SET)


@dataclass(frozen=True)
class TextRules:
    """The tokenizer's choices, applied in Python.

    Args:
        characters: every non-whitespace character is a token, default False.
        cjk_characters: every CJK character is a token, default False.
        keep: lower-cased words that keep their edge marks, default none.

    `tokenize(text)` returns `(token, start, end)` triples, offsets in code points,
    end exclusive; `text[start:end] == token`.

    Example:
        >>> READING_RULES.tokenize("to St. Louis?")
        [('to', 0, 2), ('St', 3, 5), ('.', 5, 6), ('Louis', 7, 12), ('?', 12, 13)]
    """

    characters: bool = False
    cjk_characters: bool = False
    keep: tuple[str, ...] = field(default=())

    def __post_init__(self):
        object.__setattr__(self, "keep", tuple(sorted({word.lower() for word in self.keep})))

    @classmethod
    def fit(cls, token_lists: Iterable[Sequence[str]]) -> TextRules:
        """The choices that reproduce these tokens, as `Tokenizer.fit` makes them."""
        tokens = [token for tokens in token_lists for token in tokens]
        single = sum(len(token) == 1 for token in tokens)
        characters = bool(tokens) and single >= CHARACTER_LEVEL * len(tokens)
        cjk = [token for token in tokens if any(is_cjk(char) for char in token)]
        cjk_single = sum(len(token) == 1 for token in cjk)
        cjk_characters = characters or (bool(cjk) and cjk_single >= CHARACTER_LEVEL * len(cjk))
        keep = () if characters else tuple(t for t in set(tokens) if has_edge_mark(t))
        return cls(characters, cjk_characters, keep)

    @classmethod
    def from_config(cls, config: dict | None) -> TextRules:
        """From a `Tokenizer.get_config()` dict (a model folder's `"tokenizer"`)."""
        config = config or {}
        return cls(
            bool(config.get("characters", False)),
            bool(config.get("cjk_characters", False)),
            tuple(str(word) for word in config.get("keep", ())),
        )

    def get_config(self) -> dict:
        return {
            "characters": self.characters,
            "cjk_characters": self.cjk_characters,
            "keep": list(self.keep),
        }

    def tokenize(self, text: str) -> list[tuple[str, int, int]]:
        out = []
        for start, end in self._chunks(text):
            leading, trailing = self._peel(text, start, end)
            for i in range(start, start + leading):
                out.append((text[i], i, i + 1))
            core_start, core_end = start + leading, end - trailing
            if core_end > core_start:
                out.append((text[core_start:core_end], core_start, core_end))
            for i in range(end - trailing, end):
                out.append((text[i], i, i + 1))
        return out

    def _chunks(self, text: str) -> list[tuple[int, int]]:
        """Runs of characters between whitespace, each solo character a run of its own."""
        chunks, start, previous_solo = [], None, False
        for i, char in enumerate(text):
            if char in WHITESPACE:
                if start is not None:
                    chunks.append((start, i))
                start, previous_solo = None, False
                continue
            solo = self.characters or (self.cjk_characters and _solo_cjk(char))
            if start is not None and (solo or previous_solo):
                chunks.append((start, i))
                start = None
            if start is None:
                start = i
            previous_solo = solo
        if start is not None:
            chunks.append((start, len(text)))
        return chunks

    def _peel(self, text: str, start: int, end: int) -> tuple[int, int]:
        """How many marks the chunk sheds at each edge: the fewest that leave a kept
        word, all its edge marks when none does (a chunk of marks only: each mark)."""
        length = end - start
        lead = 0
        while lead < length and text[start + lead] in _MARK_SET:
            lead += 1
        trail = 0
        while trail < length and text[end - 1 - trail] in _MARK_SET:
            trail += 1
        if self.keep and lead + trail > 0:
            for lo, hi in PEELS:
                if lo <= lead and hi <= trail and lo + hi < length:
                    if text[start + lo : end - hi].lower() in self.keep:
                        return lo, hi
        if lead == length:
            return length, 0
        return lead, trail


# What the readers of spans over raw text use unless told otherwise.
READING_RULES = TextRules(cjk_characters=True)
# Named rules a command line may ask for (`--tokenizer NAME`).
NAMED_RULES = {"words": READING_RULES, "characters": TextRules(True, True)}
