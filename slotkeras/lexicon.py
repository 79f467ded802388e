"""Word lexicons for text written without spaces between words.

A corpus written one character a token (Chinese slot and NER corpora come that way)
does not say where its words are, and a character tagger has to learn word boundaries
from the training data alone. A word list says where they may be: `TokenFeaturizer`
marks each character with the lexicon words that begin, continue or end at it (the
"softword" and lexicon features of Zhang & Yang 2018 and Ma et al. 2020), so "中国人民
大学" arrives with its words marked even when the training data never had it.

`--lexicon auto` (the default) uses jieba's dictionary when the training data is
written one CJK character a token, and nothing otherwise; `--lexicon none` turns it
off; `--lexicon FILE` reads a word list of the user's (one word a line, or jieba's
`word frequency tag`: the third field, when there is one, is the word's tag).

A lexicon is a list of `(word, tag)` pairs, the tag "" where there is none.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Sequence
from pathlib import Path

from slotkeras.config import ConfigError

AUTO, NONE = "auto", "none"
# Longest word matched, in tokens: most of jieba's dictionary, and each further length
# costs one more lookup per token in the serving graph (longer words scored no better
# on validation: docs/experiments/lexicon.md).
MAX_WORD_LENGTH = 4


def is_cjk_word(word: str) -> bool:
    from slotkeras.tokenizer import is_cjk

    return all(is_cjk(char) for char in word)


def bundled_words() -> list[tuple[str, str]]:
    """The words of jieba's dictionary (a package dependency; its dictionary is a file
    in the package, read without importing jieba) that are 2..`MAX_WORD_LENGTH` CJK
    characters long, in the dictionary's order, with their parts of speech."""
    spec = importlib.util.find_spec("jieba")
    locations = spec.submodule_search_locations if spec is not None else None
    path = Path(locations[0]) / "dict.txt" if locations else None
    if path is None or not path.is_file():
        raise ConfigError(
            "lexicon: 'auto' needs jieba's dictionary for this Chinese corpus; "
            "install it with `pip install jieba`, or pass --lexicon none"
        )
    return _usable((word, tag) for word, tag in _entries(path) if is_cjk_word(word))


def read_words(path: str | Path) -> list[tuple[str, str]]:
    """A user's word list, UTF-8: one word a line (the first field; the third, when
    there is one, its tag); the words of 2..`MAX_WORD_LENGTH` characters are kept, in
    the file's order."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such lexicon file (--lexicon takes auto, none or a FILE)")
    return _usable(_entries(path))


def _entries(path: Path):
    """`(word, tag)` of each non-blank line: its first field, and its third when there
    is one (jieba's `word frequency tag`), else ""."""
    for line in _lines(path):
        fields = line.split()
        if fields:
            yield fields[0], fields[2] if len(fields) > 2 else ""


def _lines(path: Path) -> list[str]:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the lexicon ({error.strerror})") from None
    try:
        return data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ConfigError(f"{path}, line {line}: the lexicon is not UTF-8 text") from None


def _usable(words: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Each word once (with its first tag), lower-cased as the featurizer's keys are,
    if it is 2..`MAX_WORD_LENGTH` characters long (one character is a token, not a
    word)."""
    seen = {}
    for word, tag in words:
        if 2 <= len(word) <= MAX_WORD_LENGTH:
            seen.setdefault(word.lower(), tag)
    return list(seen.items())


def uses_lexicon(token_lists: Iterable[Sequence[str]]) -> bool:
    """Whether `--lexicon auto` matches words in this training data: it is written one
    CJK character a token (the tokenizer's own test)."""
    from slotkeras.tokenizer import Tokenizer, is_cjk

    token_lists = list(token_lists)
    has_cjk = any(is_cjk(char) for tokens in token_lists for token in tokens for char in token)
    return has_cjk and Tokenizer.fit(token_lists).cjk_characters


def lexicon_for(setting: str, token_lists: Iterable[Sequence[str]]) -> list[tuple[str, str]]:
    """The lexicon `setting` (auto, none or a file) gives for this training data."""
    if setting == NONE:
        return []
    if setting == AUTO:
        return bundled_words() if uses_lexicon(token_lists) else []
    return read_words(setting)
