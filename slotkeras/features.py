"""Word encodings as Keras preprocessing layers, label vocabularies and tf.data pipelines.

The lecture's two word representations live here:

* 1-of-N encoding with an "Other" dimension: `TokenFeaturizer` maps each token to an
  index in a lexicon adapted on the training split, unknown words to the single
  "Other" (out-of-vocabulary) index 1, padding to 0.
* Letter-trigram word hashing: `LetterTrigramHashing` maps `#word#` to its letter
  trigrams (`#wo`, `wor`, `ord`, `rd#`), hashed into a fixed number of buckets with
  FarmHash fingerprints (`tf.strings.to_hash_bucket_fast`), which are stable across
  processes, machines and TensorFlow versions.

Both run in the TensorFlow graph, so training, evaluation and the exported
SavedModel compute exactly the same features.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Sequence

import keras
import numpy as np
import tensorflow as tf

from slotkeras.data import iob_spans

PAD_INDEX = 0  # index of the padding token "" in the 1-of-N vocabulary
OTHER_INDEX = 1  # index of the "Other" bucket (every word not in the lexicon)
OTHER_TOKEN = "[OTHER]"
LABEL_PAD = -1  # label value of padded time steps; losses and metrics ignore it


def _check_positive_int(name, value):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(
            f"Received an invalid value for argument `{name}`, expected a positive "
            f"integer, got {value!r}."
        )


@keras.saving.register_keras_serializable(package="slotkeras")
class LetterTrigramHashing(keras.layers.Layer):
    """Letter-trigram word hashing (the lecture's "word hashing").

    Each token is wrapped in boundary marks (`#apple#`) and cut into its letter
    trigrams (`#ap`, `app`, `ppl`, `ple`, `le#`); a trigram is a trigram of Unicode
    characters, so Chinese characters and emoji work like letters. Each trigram is
    hashed into `num_buckets` buckets with FarmHash fingerprints, stable across
    processes and machines. Bucket ids start at 1; 0 marks "no trigram" (padding
    tokens and unused slots), so the output can feed an `Embedding` with
    `mask_zero=True`. Multiplying the resulting multi-hot vector by a matrix is the
    same as summing the trigrams' embedding rows, which is how the model uses it.

    Args:
        num_buckets: number of hash buckets, default 16384.
        max_trigrams: trigrams kept per token, default 16; longer tokens keep their
            first `max_trigrams` trigrams.
        lowercase: lowercase tokens before hashing, default True.

    Call arguments:
        tokens: string tensor `[batch, time]`, padding tokens are "".

    Returns:
        int32 tensor `[batch, time, max_trigrams]`.

    Example:
        >>> layer = LetterTrigramHashing(num_buckets=1000, max_trigrams=8)
        >>> layer(tf.constant([["taipei", ""]])).shape
        TensorShape([1, 2, 8])

    Reference: Huang et al. 2013, "Learning deep structured semantic models for web
    search using clickthrough data" (DSSM word hashing).
    """

    def __init__(self, num_buckets=16384, max_trigrams=16, lowercase=True, **kwargs):
        super().__init__(**kwargs)
        _check_positive_int("num_buckets", num_buckets)
        _check_positive_int("max_trigrams", max_trigrams)
        self.num_buckets = int(num_buckets)
        self.max_trigrams = int(max_trigrams)
        self.lowercase = bool(lowercase)
        self.supports_jit = False

    def build(self, input_shape):
        pass  # no weights: a fixed hash

    def call(self, tokens):
        tokens = tf.convert_to_tensor(tokens, dtype=tf.string)
        if self.lowercase:
            tokens = tf.strings.lower(tokens, encoding="utf-8")
        marked = tf.strings.join(["#", tokens, "#"])
        chars = tf.strings.unicode_split(marked, "UTF-8", errors="replace")
        trigrams = tf.strings.ngrams(chars, 3, separator="")
        ids = tf.strings.to_hash_bucket_fast(trigrams, self.num_buckets) + 1
        shape = tf.concat([tf.shape(tokens, out_type=tf.int64), [self.max_trigrams]], 0)
        return tf.cast(ids.to_tensor(default_value=0, shape=shape), tf.int32)

    def compute_output_spec(self, tokens):
        return keras.KerasTensor(tuple(tokens.shape) + (self.max_trigrams,), dtype="int32")

    def get_config(self):
        config = super().get_config()
        config.update(
            num_buckets=self.num_buckets,
            max_trigrams=self.max_trigrams,
            lowercase=self.lowercase,
        )
        return config


@keras.saving.register_keras_serializable(package="slotkeras")
class TokenFeaturizer(keras.layers.Layer):
    """Turns string tokens into the model's inputs: 1-of-N ids and hashed trigrams.

    The 1-of-N part is a lexicon lookup: index 0 is padding (""), index 1 the
    "Other" bucket for every word not in the lexicon, and 2.. the lexicon's words.
    An `Embedding` fed with these indices computes exactly the product of the
    one-hot (1-of-N) vector with its weight matrix, without building the vector.

    Args:
        vocabulary: the lexicon, a list of words (most frequent first), default empty;
            build it with `build_vocabulary` on the training split.
        lowercase: lowercase tokens before lookup and hashing, default True.
        num_buckets: hash buckets of the letter-trigram hashing, default 16384.
        max_trigrams: trigrams kept per token, default 16.
        lexicon: words of 2..`max_word_length` tokens, joined without spaces and
            lower-cased as the keys are (`slotkeras.lexicon`), default empty. Where a
            run of tokens spells one, each of its tokens gets that match's role
            (begins, continues or ends a word of n tokens, and of its tag) in its
            unused trigram slots: the word boundaries of text written one
            character a token.
        max_word_length: longest lexicon word matched, in tokens, default 4.
        lexicon_tags: each lexicon word's tag (jieba's part of speech), "" for
            none, default none at all.

    Call arguments:
        tokens: string tensor `[batch, time]` padded with "".

    Returns:
        dict with `word_ids` (int32 `[batch, time]`) and `trigram_ids`
        (int32 `[batch, time, max_trigrams]`; with a lexicon, its matches follow
        the trigrams).
    """

    def __init__(
        self,
        vocabulary=(),
        lowercase=True,
        num_buckets=16384,
        max_trigrams=16,
        lexicon=(),
        max_word_length=4,
        lexicon_tags=(),
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocabulary = [str(word) for word in vocabulary]
        self.lowercase = bool(lowercase)
        self.num_buckets = num_buckets
        self.max_trigrams = max_trigrams
        self.lexicon = [str(word) for word in lexicon]
        _check_positive_int("max_word_length", max_word_length)
        self.max_word_length = int(max_word_length)
        self.supports_jit = False
        self._lexicon_table = None
        self.lexicon_tags = [str(t) for t in lexicon_tags] if lexicon_tags else []
        if self.lexicon:
            tags = self.lexicon_tags or [""] * len(self.lexicon)
            names = sorted(set(tags))
            index = {name: i + 1 for i, name in enumerate(names)}
            self._tag_names = tf.constant(names)
            self._lexicon_table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(
                    tf.constant(self.lexicon, dtype=tf.string),
                    tf.constant([index[t] for t in tags], tf.int64),
                ),
                default_value=0,
            )
        self._table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant([""] + self.vocabulary, dtype=tf.string),
                tf.concat(
                    [
                        tf.constant([PAD_INDEX], tf.int64),
                        tf.range(2, len(self.vocabulary) + 2, dtype=tf.int64),
                    ],
                    0,
                ),
            ),
            default_value=OTHER_INDEX,
        )
        self.hashing = LetterTrigramHashing(
            num_buckets=num_buckets,
            max_trigrams=max_trigrams,
            lowercase=lowercase,
            name="letter_trigram_hashing",
        )

    @property
    def vocabulary_size(self):
        """Number of 1-of-N indices: padding, "Other" and the lexicon."""
        return len(self.vocabulary) + 2

    def build(self, input_shape):
        self.hashing.build(input_shape)

    def call(self, tokens):
        tokens = tf.convert_to_tensor(tokens, dtype=tf.string)
        keys = tf.strings.lower(tokens, encoding="utf-8") if self.lowercase else tokens
        word_ids = tf.cast(self._table.lookup(keys), tf.int32)
        trigram_ids = self.hashing(tokens)
        if self._lexicon_table is not None:
            trigram_ids = self._with_lexicon_matches(keys, trigram_ids)
        return {"word_ids": word_ids, "trigram_ids": trigram_ids}

    def _with_lexicon_matches(self, keys, trigram_ids):
        """`trigram_ids` with each token's lexicon matches in its unused slots: for
        every lexicon word of n tokens that covers it, whether the token begins
        (`B`), continues (`M`) or ends (`E`) it, by n and by the word's tag. They
        are hashed into the trigram buckets (as strings no trigram can be: they
        start with a control character) and so join the token's bag of trigrams in
        its embedding."""
        width = tf.shape(keys)[1]
        present = keys != ""

        def shifted(values, by, fill):
            """`values[:, t + by]` at `t` (`fill` past either end)."""
            if by >= 0:
                rest = values[:, by:]
                return tf.concat([rest, tf.fill([tf.shape(values)[0], by], fill)], 1)[:, :width]
            head = tf.fill([tf.shape(values)[0], -by], fill)
            return tf.concat([head, values[:, : width + by]], 1)[:, :width]

        roles = []
        # Each length's windows extend the last length's by one token.
        window, whole = keys, present
        for n in range(2, self.max_word_length + 1):
            window = tf.strings.join([window, shifted(keys, n - 1, "")])
            whole = whole & shifted(present, n - 1, False)
            code = self._lexicon_table.lookup(window)
            begins = whole & (code > 0)
            roles.append(tf.where(begins, f"\x1fB{n}", ""))
            roles.append(tf.where(shifted(begins, 1 - n, False), f"\x1fE{n}", ""))
            if n > 2:
                inside = tf.reduce_any(
                    tf.stack([shifted(begins, -k, False) for k in range(1, n - 1)]), 0
                )
                roles.append(tf.where(inside, f"\x1fM{n}", ""))
            # The same roles by the word's lexicon tag (jieba's part of speech: `nt`
            # an organization, `ns` a place, `nr` a person), whatever its length.
            tagged = tf.where(begins, tf.gather(self._tag_names, tf.maximum(code - 1, 0)), "")
            roles.append(tf.strings.join(["\x1fb", tagged]))
            roles.append(tf.strings.join(["\x1fe", shifted(tagged, 1 - n, "")]))
            roles.extend(
                tf.strings.join(["\x1fm", shifted(tagged, -k, "")]) for k in range(1, n - 1)
            )
        roles = tf.stack(roles, axis=-1)
        ids = tf.where(
            tf.strings.length(roles) > 2,  # a role with a length or a tag
            tf.cast(tf.strings.to_hash_bucket_fast(roles, self.num_buckets) + 1, tf.int32),
            0,
        )
        # The trigrams first, then the matches, each in its order, cut to the width.
        both = tf.concat([trigram_ids, ids], axis=-1)
        order = tf.argsort(tf.cast(both == 0, tf.int32), axis=-1, stable=True)
        return tf.gather(both, order, batch_dims=2)[..., : self.max_trigrams]

    def compute_output_spec(self, tokens):
        return {
            "word_ids": keras.KerasTensor(tuple(tokens.shape), dtype="int32"),
            "trigram_ids": keras.KerasTensor(
                tuple(tokens.shape) + (self.max_trigrams,), dtype="int32"
            ),
        }

    def get_config(self):
        config = super().get_config()
        config.update(
            vocabulary=list(self.vocabulary),
            lowercase=self.lowercase,
            num_buckets=self.num_buckets,
            max_trigrams=self.max_trigrams,
            lexicon=list(self.lexicon),
            max_word_length=self.max_word_length,
            lexicon_tags=list(self.lexicon_tags),
        )
        return config


def build_vocabulary(
    token_lists: Iterable[Sequence[str]],
    *,
    lowercase: bool = True,
    min_count: int = 1,
    max_size: int | None = None,
) -> list[str]:
    """The 1-of-N lexicon of a training split: words seen `min_count` times or more,
    most frequent first (ties alphabetical, so the order is deterministic), at most
    `max_size` words. Everything else falls into the "Other" bucket."""
    _check_positive_int("min_count", min_count)
    if max_size is not None:
        _check_positive_int("max_size", max_size)
    counts = collections.Counter(
        token.lower() if lowercase else token for tokens in token_lists for token in tokens
    )
    words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    return words[:max_size] if max_size is not None else words


def to_bioes(tags: Sequence[str]) -> list[str]:
    """One utterance's BIO tags in the BIOES scheme that a model may tag with inside:
    a span of one token is `S-x`, a longer one `B-x I-x ... E-x`. Spans are read with
    conlleval semantics (`slotkeras.data.iob_spans`: an `I-x` may open one), so that
    `output_tag` of each tag gives back a sequence with exactly the same spans.

    >>> to_bioes(["O", "B-city", "I-city", "I-city", "I-date", "O"])
    ['O', 'B-city', 'I-city', 'E-city', 'S-date', 'O']
    """
    out = ["O"] * len(tags)
    for kind, start, end in iob_spans(tags):
        if end - start == 1:
            out[start] = f"S-{kind}"
            continue
        out[start] = f"B-{kind}"
        out[start + 1 : end - 1] = [f"I-{kind}"] * (end - start - 2)
        out[end - 1] = f"E-{kind}"
    return out


def output_tag(tag: str) -> str:
    """The BIO tag that a model's tag stands for in predictions, reports and the
    SavedModel: `S-x` opens a span like `B-x`, and `E-x` continues one like `I-x`, so a
    model tagging in BIOES answers in the scheme of its training data (and a decoded
    `B-x O`, which BIOES forbids, reads as the one-token span it would be in BIO)."""
    if tag[:2] == "S-":
        return "B-" + tag[2:]
    if tag[:2] == "E-":
        return "I-" + tag[2:]
    return tag


class LabelVocabulary:
    """A list of labels (slot tags or intents) with a fixed order and index lookups.

    For slot tags "O" comes first; the rest are sorted, so two runs on the same data
    give the same ids.
    """

    def __init__(self, labels: Sequence[str]):
        self.labels = list(labels)
        self.index = {label: i for i, label in enumerate(self.labels)}
        if len(self.index) != len(self.labels):
            raise ValueError(f"Duplicate labels in {self.labels!r}.")

    @classmethod
    def from_tags(cls, tag_lists: Iterable[Sequence[str]]) -> LabelVocabulary:
        tags = {tag for tags in tag_lists for tag in tags}
        tags.discard("O")
        return cls(["O"] + sorted(tags))

    @classmethod
    def from_labels(cls, labels: Iterable[str]) -> LabelVocabulary:
        return cls(sorted(set(labels)))

    def __len__(self):
        return len(self.labels)

    def encode(self, labels: Sequence[str], unknown: int | None = None) -> list[int]:
        """Label ids; a label not in the vocabulary gives `unknown` (or raises)."""
        if unknown is None:
            return [self.index[label] for label in labels]
        return [self.index.get(label, unknown) for label in labels]


def pad_tokens(token_lists: Sequence[Sequence[str]]) -> np.ndarray:
    """Token lists as a `[batch, time]` object array padded with "" (time >= 1)."""
    width = max([len(tokens) for tokens in token_lists] + [1])
    out = np.full((len(token_lists), width), "", dtype=object)
    for i, tokens in enumerate(token_lists):
        out[i, : len(tokens)] = tokens
    return out


def featurize(
    featurizer: TokenFeaturizer, token_lists: Sequence[Sequence[str]], chunk_size: int = 2048
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Runs the featurizer over utterances in chunks; returns per-utterance arrays
    (word ids `[len]`, trigram ids `[len, max_trigrams]`), unpadded."""
    word_ids, trigram_ids = [], []
    for start in range(0, len(token_lists), chunk_size):
        chunk = token_lists[start : start + chunk_size]
        features = featurizer(tf.constant(pad_tokens(chunk).astype(str)))
        words = features["word_ids"].numpy()
        trigrams = features["trigram_ids"].numpy()
        for i, tokens in enumerate(chunk):
            word_ids.append(words[i, : len(tokens)])
            trigram_ids.append(trigrams[i, : len(tokens)])
    return word_ids, trigram_ids


def length_buckets(max_len: int) -> list[int]:
    """Bucket boundaries for batching by length: fine for short utterances, coarser
    for long ones, so padding wastes little and few shapes are traced."""
    bounds, b = [], 4
    while b < max_len + 1:
        bounds.append(b)
        b = b + 2 if b < 16 else b + 4 if b < 32 else b + 8 if b < 64 else b * 2
    return bounds


def make_dataset(
    word_ids: Sequence[np.ndarray],
    trigram_ids: Sequence[np.ndarray],
    slot_ids: Sequence[Sequence[int]] | None = None,
    intent_ids: Sequence[int] | None = None,
    *,
    batch_size: int = 32,
    shuffle: bool = False,
    seed: int = 0,
    max_trigrams: int = 16,
) -> tf.data.Dataset:
    """A tf.data pipeline over featurized utterances: batches of similar length
    (bucketing), padded (ids with 0, labels with `LABEL_PAD`), cached and prefetched.

    Elements are `inputs` or `(inputs, targets)` with `inputs` a dict of
    `word_ids` `[batch, time]` and `trigram_ids` `[batch, time, max_trigrams]`, and
    `targets` a dict of `slots` `[batch, time]` and, with intents, `intent` `[batch]`.
    Without shuffling the order of the utterances is kept (one bucket), so
    predictions line up with the input.
    """
    lengths = np.array([len(w) for w in word_ids], dtype=np.int64)
    flat_words = (
        np.concatenate(word_ids).astype(np.int32) if len(lengths) else np.zeros(0, np.int32)
    )
    flat_tri = (
        np.concatenate(trigram_ids).astype(np.int32).reshape(-1, max_trigrams)
        if len(lengths)
        else np.zeros((0, max_trigrams), np.int32)
    )
    inputs = {
        "word_ids": tf.RaggedTensor.from_row_lengths(flat_words, lengths),
        "trigram_ids": tf.RaggedTensor.from_row_lengths(flat_tri, lengths),
    }
    padded_shapes = {"word_ids": [None], "trigram_ids": [None, max_trigrams]}
    padding_values = {"word_ids": 0, "trigram_ids": 0}
    element = inputs
    if slot_ids is not None:
        targets = {
            "slots": tf.RaggedTensor.from_row_lengths(
                np.concatenate([np.asarray(s, np.int32) for s in slot_ids]).astype(np.int32),
                lengths,
            )
        }
        target_shapes = {"slots": [None]}
        target_padding = {"slots": LABEL_PAD}
        if intent_ids is not None:
            targets["intent"] = np.asarray(intent_ids, np.int32)
            target_shapes["intent"] = []
            target_padding["intent"] = 0
        element = (inputs, targets)
        padded_shapes = (padded_shapes, target_shapes)
        padding_values = (padding_values, target_padding)

    def dense(*parts):
        return tf.nest.map_structure(
            lambda t: t.to_tensor() if isinstance(t, tf.RaggedTensor) else t,
            parts[0] if len(parts) == 1 else parts,
        )

    ds = tf.data.Dataset.from_tensor_slices(element).map(dense).cache()
    if shuffle:
        ds = ds.shuffle(len(lengths), seed=seed, reshuffle_each_iteration=True)
        bounds = length_buckets(int(lengths.max()) if len(lengths) else 1)

        def length_of(*args):
            return tf.shape(args[0]["word_ids"])[0]

        ds = ds.bucket_by_sequence_length(
            length_of,
            bucket_boundaries=bounds,
            bucket_batch_sizes=[batch_size] * (len(bounds) + 1),
            padded_shapes=padded_shapes,
            padding_values=padding_values,
        )
        # Every epoch has the same batches per bucket: tell Keras how many.
        per_bucket = np.bincount(np.searchsorted(bounds, lengths, side="right"))
        steps = int(np.sum(np.ceil(per_bucket / batch_size)))
        ds = ds.apply(tf.data.experimental.assert_cardinality(steps))
    else:
        ds = ds.padded_batch(batch_size, padded_shapes=padded_shapes, padding_values=padding_values)
    return ds.prefetch(tf.data.AUTOTUNE)
