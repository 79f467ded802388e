"""The model's preprocessing layer: string tokens to 1-of-N ids (with an "Other"
bucket) and hashed letter trigrams (with lexicon matches), in the graph, so that
training, evaluation and the SavedModel compute the same features."""

import keras
import tensorflow as tf

from slotkeras.layers.argument_checks import check_positive_int
from slotkeras.layers.letter_trigram_hashing import LetterTrigramHashing

PAD_INDEX = 0  # index of the padding token "" in the 1-of-N vocabulary
OTHER_INDEX = 1  # index of the "Other" bucket (every word not in the lexicon)
OTHER_TOKEN = "[OTHER]"


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
        vector_vocabulary: the words that have a pretrained vector (lower-cased as the
            keys are), default none; the i-th word's `vector_ids` is i + 1, any other
            word's 0 (`slotkeras.word_vectors`).

    Call arguments:
        tokens: string tensor `[batch, time]` padded with "".

    Returns:
        dict with `word_ids` (int32 `[batch, time]`) and `trigram_ids`
        (int32 `[batch, time, max_trigrams]`; with a lexicon, its matches follow
        the trigrams); with a vector vocabulary, `vector_ids` (int32 `[batch, time]`).
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
        vector_vocabulary=(),
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocabulary = [str(word) for word in vocabulary]
        self.lowercase = bool(lowercase)
        self.num_buckets = num_buckets
        self.max_trigrams = max_trigrams
        self.lexicon = [str(word) for word in lexicon]
        check_positive_int("max_word_length", max_word_length)
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
        self.vector_vocabulary = [str(word) for word in vector_vocabulary]
        self._vector_table = None
        if self.vector_vocabulary:
            self._vector_table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(
                    tf.constant(self.vector_vocabulary, dtype=tf.string),
                    tf.range(1, len(self.vector_vocabulary) + 1, dtype=tf.int64),
                ),
                default_value=0,
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
        features = {"word_ids": word_ids, "trigram_ids": trigram_ids}
        if self._vector_table is not None:
            features["vector_ids"] = tf.cast(self._vector_table.lookup(keys), tf.int32)
        return features

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
        spec = {
            "word_ids": keras.KerasTensor(tuple(tokens.shape), dtype="int32"),
            "trigram_ids": keras.KerasTensor(
                tuple(tokens.shape) + (self.max_trigrams,), dtype="int32"
            ),
        }
        if self.vector_vocabulary:
            spec["vector_ids"] = keras.KerasTensor(tuple(tokens.shape), dtype="int32")
        return spec

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
            vector_vocabulary=list(self.vector_vocabulary),
        )
        return config
