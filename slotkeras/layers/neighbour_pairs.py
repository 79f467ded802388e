"""Embeddings of each word's pairs with its neighbours, hashed."""

import keras
from keras import ops

from slotkeras.layers.argument_checks import check_positive_int

# The pair (a, b) of word ids goes to bucket ((a * _A) % _M + b * _B) % _M % buckets + 1:
# _M is a prime below 2**31 and _A, _B below it, so every product fits in int64 and
# the hash is the same on every device and under XLA (no string ops, no overflow).
_M = 2_147_483_629
_A = 1_103_515_245
_B = 1_664_525
_LEFT, _RIGHT = 0, 1_000_003  # offsets that keep (a, b) on the left apart from the right


@keras.saving.register_keras_serializable(package="slotkeras")
class NeighbourPairEmbedding(keras.layers.Layer):
    """Embeds each word's pair with the word before it and its pair with the word after.

    In Chinese written one character a token, a word is a pair (or run) of
    characters, and which pairs are words is what a tagger has to learn first; the
    linear CRF's bigram features are why it beats a character model there. These are
    the "bichar" inputs of Zhang & Yang (2018): each token gets the embedding of
    (previous, this) and of (this, next), concatenated. In English they are the
    word-pair features of a classic CRF ("new york", "the godfather").

    Pairs are of 1-of-N word ids (0 padding, 1 "Other"), hashed into `num_buckets`
    buckets. Every pair of training words is a pair of lexicon ids, so nothing a
    string hash would know is lost, and word dropout (a word replaced by "Other")
    drops its pairs too. The utterance's edges pair with 0 (padding), so the first
    and last words get pairs of their own.

    Args:
        num_buckets: hash buckets (ids 1..num_buckets; 0 is never used).
        output_dim: width of each pair's embedding; the output has twice this.
        embeddings_initializer: default "uniform".

    Call arguments:
        word_ids: int tensor `[batch, time]`, right-padded with 0.

    Returns:
        float tensor `[batch, time, 2 * output_dim]`: the left pair's embedding, then
        the right pair's. The layer computes a mask: the non-padding steps.

    Example:
        >>> layer = NeighbourPairEmbedding(num_buckets=1000, output_dim=8)
        >>> layer(np.array([[5, 9, 2, 0]])).shape
        (1, 4, 16)
    """

    def __init__(self, num_buckets, output_dim, embeddings_initializer="uniform", **kwargs):
        super().__init__(**kwargs)
        self.num_buckets = check_positive_int("num_buckets", num_buckets)
        self.output_dim = check_positive_int("output_dim", output_dim)
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.supports_masking = True

    def build(self, input_shape):
        self.embeddings = self.add_weight(
            shape=(self.num_buckets + 1, self.output_dim),
            initializer=self.embeddings_initializer,
            name="embeddings",
        )

    def pair_ids(self, word_ids):
        """The bucket ids `[batch, time, 2]` of each word's left and right pairs."""
        ids = ops.cast(word_ids, "int64")
        edge = ops.zeros_like(ids[:, :1])
        before = ops.concatenate([edge, ids[:, :-1]], axis=1)
        after = ops.concatenate([ids[:, 1:], edge], axis=1)
        left = self._bucket(before + _LEFT, ids)
        right = self._bucket(ids + _RIGHT, after)
        return ops.stack([left, right], axis=-1)

    def _bucket(self, a, b):
        mixed = ((a * _A) % _M + b * _B) % _M
        return ops.cast(mixed % self.num_buckets + 1, "int32")

    def call(self, word_ids):
        vectors = ops.take(self.embeddings, self.pair_ids(word_ids), axis=0)
        shape = ops.shape(word_ids)
        vectors = ops.reshape(vectors, (shape[0], shape[1], 2 * self.output_dim))
        keep = ops.expand_dims(ops.cast(ops.greater(word_ids, 0), vectors.dtype), -1)
        return ops.cast(vectors * keep, self.compute_dtype)

    def compute_mask(self, word_ids, mask=None):
        return ops.greater(word_ids, 0)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (2 * self.output_dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_buckets=self.num_buckets,
            output_dim=self.output_dim,
            embeddings_initializer=keras.initializers.serialize(self.embeddings_initializer),
        )
        return config
