"""Letter-trigram word hashing, the lecture's second word representation."""

import keras
import tensorflow as tf

from slotkeras.layers.argument_checks import check_positive_int


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
        check_positive_int("num_buckets", num_buckets)
        check_positive_int("max_trigrams", max_trigrams)
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
