"""Embedding of a word from its hashed letter trigrams."""

import keras
import tensorflow as tf
from keras import ops


@keras.saving.register_keras_serializable(package="slotkeras")
class HashedWordEmbedding(keras.layers.Layer):
    """Embeds each word as the mean of its letter-trigram embeddings.

    This is the lecture's word hashing followed by a linear layer: the multi-hot
    trigram vector of a word times a `[num_buckets + 1, output_dim]` matrix, divided
    by the number of trigrams. Unseen words still get a vector from the trigrams
    they share with known words.

    Args:
        num_buckets: number of hash buckets (ids run from 1 to `num_buckets`; 0 is
            "no trigram").
        output_dim: embedding width.
        embeddings_initializer: default "uniform".
        embeddings_regularizer: default None.

    Call arguments:
        trigram_ids: int tensor `[batch, time, max_trigrams]` from
            `slotkeras.layers.LetterTrigramHashing`.

    Returns:
        float tensor `[batch, time, output_dim]`; a word with no trigram (padding)
        gives zeros. The layer computes a mask: time steps with at least one trigram.

    Example:
        >>> layer = HashedWordEmbedding(num_buckets=100, output_dim=8)
        >>> layer(np.array([[[3, 7, 0], [0, 0, 0]]])).shape
        (1, 2, 8)
    """

    def __init__(
        self,
        num_buckets,
        output_dim,
        embeddings_initializer="uniform",
        embeddings_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_buckets = num_buckets
        self.output_dim = output_dim
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.embeddings_regularizer = keras.regularizers.get(embeddings_regularizer)
        self.supports_masking = True

    def build(self, input_shape):
        self.embeddings = self.add_weight(
            shape=(self.num_buckets + 1, self.output_dim),
            initializer=self.embeddings_initializer,
            regularizer=self.embeddings_regularizer,
            name="embeddings",
        )

    def call(self, trigram_ids):
        # Only the trigrams present are gathered and summed per word (most of the
        # `max_trigrams` slots of short words and padding are empty): half the work
        # of gathering every slot and masking, forwards and backwards, and row 0
        # ("no trigram") is never read.
        trigram_ids = tf.cast(trigram_ids, tf.int32)
        shape = tf.shape(trigram_ids)
        per_word = tf.reshape(trigram_ids, [-1, shape[-1]])
        where = tf.where(per_word > 0)
        word = tf.cast(where[:, 0], tf.int32)
        ids = tf.gather_nd(per_word, where)
        words = tf.shape(per_word)[0]
        vectors = tf.cast(tf.gather(self.embeddings, ids), self.compute_dtype)
        total = tf.math.unsorted_segment_sum(vectors, word, words)
        count = tf.math.unsorted_segment_sum(tf.ones_like(word, self.compute_dtype), word, words)
        mean = total / tf.maximum(count, 1.0)[:, None]
        return tf.reshape(mean, tf.concat([shape[:-1], [self.output_dim]], 0))

    def compute_mask(self, trigram_ids, mask=None):
        return ops.any(ops.greater(trigram_ids, 0), axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.output_dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_buckets=self.num_buckets,
            output_dim=self.output_dim,
            embeddings_initializer=keras.initializers.serialize(self.embeddings_initializer),
            embeddings_regularizer=keras.regularizers.serialize(self.embeddings_regularizer),
        )
        return config
