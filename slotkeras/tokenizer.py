"""Raw text to tokens, in the TensorFlow graph, the way the training data was tokenized.

People type "Show me flights to Boston?" and write Chinese without spaces; training
corpora are tokenized ("boston", "?"; one token per Chinese character). `Tokenizer`
learns from the training tokens which of three choices reproduce them and applies
them to raw text:

* `characters`: every character that is not whitespace is a token (corpora written
  character by character, Latin letters and digits included);
* `cjk_characters`: each CJK character (Han, Hiragana, Katakana, Hangul syllables,
  CJK and full-width punctuation) is a token, the rest is split into words;
* `keep`: the training words that begin or end with a mark (`st.`, `a.m.`, `'s`).
  Elsewhere the marks that close or open a word (`? ! . , ; :`, quotes, brackets)
  are split off, one token per mark; marks inside a word (`o'clock`, `5:30`) stay.

Words are whitespace-separated (whitespace as Python's `str.split()` knows it, like
the readers). Every token is a substring of the input, and its offsets are Unicode
code points into it, which is how Python and JSON clients index strings. The same
ops run in `SlotFiller`, `predict` and the exported SavedModel, with core TensorFlow
ops only, so TensorFlow Serving needs no custom op library.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

# The character classes and choices are stated once, in slotkeras.raw_text, which
# applies the same rules in plain Python for the readers of raw text.
from slotkeras.raw_text import (
    CJK_PUNCTUATION_RANGES,
    CJK_RANGES,
    MARKS,
    PEELS,
    SUPPLEMENTARY_CJK,
    TextRules,
    has_edge_mark,
    is_cjk,
    raw_whitespace,
)

# What `str.isspace()` is true for (code points): the readers split with `str.split()`.
WHITESPACE = raw_whitespace()
# Bits of `_class_table`: the classes of the code points below `BMP_END`.
SPACE, MARK, SOLO = 1, 2, 4
BMP_END = 0x10000
# What the decoder puts for invalid UTF-8: a surrogate, which valid UTF-8 cannot hold.
INVALID = 0xD800
__all__ = ["CJK_RANGES", "MARKS", "PEELS", "Tokenizer", "has_edge_mark", "is_cjk"]


@dataclass(frozen=True)
class Tokenizer:
    """Splits raw utterances into tokens as the training corpus was split.

    Args:
        characters: every non-whitespace character is a token, default False.
        cjk_characters: every CJK character is a token, default False.
        keep: lower-cased words that keep their leading or trailing marks.
        marks: the tokens of the training data made of marks only (`(`, `“`); see
            `unseen_marks`.

    Call `tokenize(texts)` with a 1-D string tensor; it returns dense `[batch, time]`
    `tokens` (padded with ""), and int32 `starts` and `ends` (code point offsets,
    padded with -1), with at least one time step.

    Example:
        >>> tokenizer = Tokenizer.fit([["fly", "to", "st.", "louis"]])
        >>> out = tokenizer.tokenize(tf.constant(["Fly to St. Louis?"]))
        >>> out["tokens"].numpy()
        array([[b'Fly', b'to', b'St.', b'Louis', b'?']], dtype=object)
    """

    characters: bool = False
    cjk_characters: bool = False
    keep: tuple[str, ...] = field(default=())
    marks: tuple[str, ...] = field(default=())

    @classmethod
    def fit(cls, token_lists: Iterable[Sequence[str]]) -> Tokenizer:
        """The choices that reproduce these training tokens."""
        tokens = [token for tokens in token_lists for token in tokens]
        rules = TextRules.fit([tokens])
        # The kept words lower-cased as the graph lower-cases the text it looks up.
        marked = sorted({token for token in tokens if has_edge_mark(token)})
        keep = _lower(marked) if marked and not rules.characters else []
        marks = sorted({token for token in tokens if all(char in MARKS for char in token)})
        return cls(rules.characters, rules.cjk_characters, tuple(sorted(set(keep))), tuple(marks))

    def get_config(self) -> dict:
        return {
            "characters": self.characters,
            "cjk_characters": self.cjk_characters,
            "keep": list(self.keep),
            "marks": list(self.marks),
        }

    @classmethod
    def from_config(cls, config: dict | None) -> Tokenizer:
        """`config` as `get_config` wrote it; None (a folder from before the tokenizer
        was recorded) splits on whitespace and marks, with an empty lexicon."""
        config = config or {}
        return cls(
            bool(config.get("characters", False)),
            bool(config.get("cjk_characters", False)),
            tuple(str(word) for word in config.get("keep", ())),
            tuple(str(mark) for mark in config.get("marks", ())),
        )

    def unseen_marks(self, tokens: tf.Tensor, split_marks: tf.Tensor | None = None) -> tf.Tensor:
        """True for tokens made of marks only that the training data never had as a
        token: marks split off what people type ("Friday?"). Such a token belongs
        to no slot (the decoder tags it "O"), so no slot value takes in the mark.
        `split_marks`: for `tokenize`'s tokens, its own `split_marks`, which saves
        a pattern match per token: a token of marks only that it did not split off
        is a word the training data has (`keep`), so a seen one."""
        marks_only = split_marks
        if marks_only is None:
            pattern = "[" + "".join(f"\\x{{{ord(m):x}}}" for m in MARKS) + "]+"
            marks_only = tf.strings.regex_full_match(tokens, pattern)
        if not self.marks:
            return marks_only
        seen = tf.reduce_any(
            tf.equal(tokens[..., None], tf.constant(list(self.marks), tf.string)), axis=-1
        )
        return tf.logical_and(marks_only, tf.logical_not(seen))

    def tokenize(self, texts: tf.Tensor) -> dict:
        """`tokens`, `starts` and `ends` of a 1-D string tensor of utterances, and
        `split_marks` (bool): the marks split off a word's edges or out of a run of
        marks, one token each."""
        texts, codes, splits, is_ascii = _decode(tf.convert_to_tensor(texts, tf.string))
        chunks = self._chunks(codes, splits)
        leading, trailing = self._peel(texts, chunks)
        return _tokens(texts, chunks, leading, trailing, is_ascii)

    def _chunks(self, flat, splits):
        """Runs of characters between whitespace, each CJK character (or each
        character) a run of its own: row, start, length and edge-mark counts.

        `flat` are the batch's code points one after another, `splits` where each
        utterance begins. Positions are kept in that flat numbering until the
        chunks are known, so that only the chunks, not the characters, are
        located in their utterances."""
        classes = tf.gather(_class_table(self.cjk_characters), tf.minimum(flat, BMP_END))
        space, mark = _has(classes, SPACE), _has(classes, MARK)
        if self.characters:
            solo = tf.logical_not(space)
        elif self.cjk_characters:
            # The table covers the Basic Multilingual Plane; the ideographs above it
            # are one range.
            above = tf.logical_and(flat >= SUPPLEMENTARY_CJK[0], flat <= SUPPLEMENTARY_CJK[1])
            solo = tf.logical_or(_has(classes, SOLO), above)
        else:
            solo = tf.zeros_like(space)
        size = tf.size(flat)
        # Each utterance's first character, by its offset (empty ones add to the
        # same place or to the end, which is cut off).
        first = tf.scatter_nd(splits[:-1, None], tf.ones_like(splits[:-1]), size[None] + 1)
        first = first[:-1] > 0
        after_space = tf.logical_or(first, _shifted(space, True))
        after_solo = tf.logical_and(tf.logical_not(first), _shifted(solo, False))
        text = tf.logical_not(space)
        begins = tf.logical_and(text, tf.logical_or(tf.logical_or(after_space, solo), after_solo))
        # A chunk ends before a space, before the next chunk's first character (the
        # next utterance's included) and at the end. Chunks are found by where they
        # begin and end, and their edge marks by binary searches among the other
        # characters: a few ops on the chunks, where numbering each character's
        # chunk and reducing over the chunks took several over the characters.
        ends = tf.logical_and(text, tf.concat([tf.logical_or(begins, space)[1:], [True]], 0))
        begin = tf.cast(tf.where(begins)[:, 0], tf.int32)
        end = tf.cast(tf.where(ends)[:, 0], tf.int32) + 1
        # The edge marks run from the chunk's ends to its first (last) other
        # character; a chunk of marks only is all leading and all trailing.
        others = tf.cast(tf.where(tf.logical_and(text, tf.logical_not(mark)))[:, 0], tf.int32)
        bounded = tf.concat([[-1], others, [size]], 0)
        first_other = tf.gather(bounded, tf.searchsorted(others, begin, side="left") + 1)
        last_other = tf.gather(bounded, tf.searchsorted(others, end, side="left"))
        row = tf.searchsorted(splits[1:], begin, side="right")
        return {
            "row": row,
            "start": begin - tf.gather(splits, row),
            "length": end - begin,
            "leading": tf.minimum(first_other, end) - begin,
            "trailing": end - 1 - tf.maximum(last_other, begin - 1),
        }

    def _peel(self, texts, chunks):
        """How many marks each chunk sheds at each edge: the fewest that leave a
        lexicon word, all its edge marks when none does."""
        length, lead, trail = chunks["length"], chunks["leading"], chunks["trailing"]
        all_marks = tf.equal(lead, length)
        # A chunk of marks only, not in the lexicon, is one token per mark.
        leading = tf.where(all_marks, length, lead)
        trailing = tf.where(all_marks, tf.zeros_like(trail), trail)
        if not self.keep:
            return leading, trailing
        # The peels that can apply, [marked chunks, peels] at once: one lookup of
        # the pairs of a chunk with edge marks and a peel that leaves a core, where
        # a loop over the peels costs each op once per peel (a served utterance's
        # time is mostly ops), and only the few chunks with edge marks are
        # considered, where looking at every chunk costs a batch's time.
        marked = tf.cast(tf.where(lead + trail > 0)[:, 0], tf.int32)
        lead, trail, length = (tf.gather(x, marked) for x in (lead, trail, length))
        lo = tf.constant([lo for lo, _ in PEELS], tf.int32)
        hi = tf.constant([hi for _, hi in PEELS], tf.int32)
        possible = (
            (lo[None] <= lead[:, None])
            & (hi[None] <= trail[:, None])
            & (lo[None] + hi[None] < length[:, None])
        )
        pairs = tf.where(possible)
        which, peel = tf.cast(pairs[:, 0], tf.int32), tf.cast(pairs[:, 1], tf.int32)
        chunk = tf.gather(marked, which)
        first_mark = tf.gather(lo, peel)
        pieces = tf.strings.substr(
            tf.gather(texts, tf.gather(chunks["row"], chunk)),
            tf.gather(chunks["start"], chunk) + first_mark,
            tf.gather(length, which) - first_mark - tf.gather(hi, peel),
            unit="UTF8_CHAR",
        )
        found = _in_lexicon(
            tf.strings.lower(pieces, encoding="utf-8"), _fingerprints(list(self.keep))
        )
        hit = tf.scatter_nd(pairs, tf.cast(found, tf.int32), tf.shape(possible, tf.int64)) > 0
        first = tf.argmax(tf.cast(hit, tf.int32), axis=1, output_type=tf.int32)  # earliest
        matched = tf.reduce_any(hit, axis=1)
        rows = marked[:, None]
        leading = tf.tensor_scatter_nd_update(
            leading, rows, tf.where(matched, tf.gather(lo, first), tf.gather(leading, marked))
        )
        trailing = tf.tensor_scatter_nd_update(
            trailing, rows, tf.where(matched, tf.gather(hi, first), tf.gather(trailing, marked))
        )
        return leading, trailing


def _tokens(texts, chunks, leading, trailing, is_ascii):
    """Each chunk's leading marks, its core and its trailing marks as tokens.

    Written for few ops rather than few elements (a served utterance's time is
    mostly the number of ops run): a token's chunk comes from one sorted search,
    and one ragged-to-dense conversion of token numbers places every output."""
    start, length = chunks["start"], chunks["length"]
    core = length - leading - trailing
    has_core = tf.cast(core > 0, tf.int32)
    count = leading + has_core + trailing
    ends = tf.cumsum(count)
    number = tf.range(tf.reduce_sum(count))
    chunk = tf.searchsorted(ends, number, side="right")
    index = number - tf.gather(ends - count, chunk)
    lead, core, has_core = (tf.gather(x, chunk) for x in (leading, core, has_core))
    chunk_start = tf.gather(start, chunk)
    end_of_chunk = chunk_start + tf.gather(length, chunk)
    is_core = tf.logical_and(tf.equal(has_core, 1), tf.equal(index, lead))
    offset = tf.where(
        index < lead,
        chunk_start + index,
        tf.where(
            is_core,
            chunk_start + lead,
            end_of_chunk - tf.gather(trailing, chunk) + index - lead - has_core,
        ),
    )
    size = tf.where(is_core, core, tf.ones_like(core))
    rows = tf.gather(chunks["row"], chunk)
    batch = tf.shape(texts, out_type=tf.int32)[0]
    # Token number + 1 at each [row, position], 0 on padding; at least one column.
    placed = tf.RaggedTensor.from_value_rowids(number + 1, rows, nrows=batch, validate=False)
    placed = placed.to_tensor(default_value=0)
    placed = tf.pad(placed, [[0, 0], [0, tf.maximum(1 - tf.shape(placed)[1], 0)]])

    def dense(flat, default):
        return tf.gather(tf.concat([[default], flat], 0), placed)

    # Each token is cut from its own utterance in place (`texts` broadcast over the
    # columns; padding is an empty cut): copying every token's utterance first cost
    # more than the cut. ASCII's characters are its bytes, which a cut by bytes
    # counts without reading them.
    starts, sizes = dense(offset, 0), dense(size, 0)
    tokens = tf.cond(
        is_ascii,
        lambda: tf.strings.substr(texts[:, None], starts, sizes, unit="BYTE"),
        lambda: tf.strings.substr(texts[:, None], starts, sizes, unit="UTF8_CHAR"),
    )
    return {
        "tokens": tokens,
        "starts": dense(offset, -1),
        "ends": dense(offset + size, -1),
        "split_marks": dense(tf.logical_not(is_core), False),
    }


def _lower(words: list[str]) -> list[str]:
    """Lower-cased as the graph lower-cases (`tf.strings.lower`, UTF-8)."""
    lowered = tf.strings.lower(tf.constant(words), encoding="utf-8").numpy()
    return [word.decode("utf-8") for word in lowered]


def _decode(texts):
    """`texts` as valid UTF-8 (each invalid byte sequence replaced by U+FFFD), their
    code points one after another, the int32 offsets where each text begins, and
    whether all of it is ASCII.
    Text that decodes cleanly, nearly all of it, is not rewritten, and ASCII text,
    most English text, is its own code points, one a byte: its bytes are read as
    they are, which costs less than decoding them."""

    def decode(texts):
        codes = tf.strings.unicode_decode(
            texts, "UTF-8", errors="replace", replacement_char=INVALID
        )
        return codes.flat_values, tf.cast(codes.row_splits, tf.int32)

    def checked():
        flat, splits = decode(texts)

        def repaired():
            valid = tf.strings.unicode_transcode(texts, "UTF-8", "UTF-8", errors="replace")
            return (valid, *decode(valid))

        valid = tf.cond(
            tf.reduce_any(tf.equal(flat, INVALID)), repaired, lambda: (texts, flat, splits)
        )
        return (*valid, tf.constant(False))

    data = tf.io.decode_raw(tf.strings.reduce_join(texts), tf.uint8)

    def as_bytes():
        splits = tf.concat([[0], tf.cumsum(tf.strings.length(texts))], 0)
        return texts, tf.cast(data, tf.int32), splits, tf.constant(True)

    return tf.cond(tf.reduce_all(data < 128), as_bytes, checked)


@functools.lru_cache(maxsize=2)
def _class_table(cjk_characters: bool) -> np.ndarray:
    """`SPACE`, `MARK` and (for `cjk_characters`) `SOLO` bits of every code point of
    the Basic Multilingual Plane, and 0 at `BMP_END`, where the code points above
    it are looked up: one gather classifies a character, where comparing it with
    each whitespace character and each mark takes about a hundred comparisons."""
    table = np.zeros(BMP_END + 1, np.uint8)
    table[list(WHITESPACE)] |= SPACE
    table[[ord(mark) for mark in MARKS]] |= MARK
    if cjk_characters:
        for lo, hi in CJK_RANGES + CJK_PUNCTUATION_RANGES:  # all below BMP_END
            table[lo : hi + 1] |= SOLO
        table[list(WHITESPACE)] &= ~np.uint8(SOLO)
    return table


def _has(classes, bit):
    return tf.not_equal(tf.bitwise.bitwise_and(classes, np.uint8(bit)), 0)


def _shifted(flags, fill):
    """`flags` moved one place right: each element gets its predecessor's value."""
    return tf.concat([tf.constant([fill]), flags], 0)[:-1]


# Words are looked up by 62-bit FarmHash fingerprint in a sorted constant: a binary
# search, where comparing each word with each lexicon word grows with the lexicon,
# and no lookup table that a server would have to initialize.
FINGERPRINT_BUCKETS = 2**62


def _fingerprints(words: list[str]) -> tf.Tensor:
    """The sorted fingerprints of `words`, hashed eagerly (also while a graph is
    traced) and put into the graph as a constant."""
    with tf.init_scope():
        hashed = tf.strings.to_hash_bucket_fast(tf.constant(words), FINGERPRINT_BUCKETS)
        values = sorted(hashed.numpy().tolist())
    return tf.constant(values, tf.int64)


def _in_lexicon(words, lexicon):
    """True where `words` are in `lexicon` (sorted fingerprints, not empty)."""
    hashed = tf.strings.to_hash_bucket_fast(words, FINGERPRINT_BUCKETS)
    index = tf.minimum(tf.searchsorted(lexicon, hashed), tf.size(lexicon, tf.int32) - 1)
    return tf.equal(tf.gather(lexicon, index), hashed)
