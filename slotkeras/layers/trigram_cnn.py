"""Ordered character features of a word: a CNN over its letter trigrams."""

import keras
from keras import ops

from slotkeras.layers.argument_checks import check_positive_int


@keras.saving.register_keras_serializable(package="slotkeras")
class TrigramCNN(keras.layers.Layer):
    """A convolution over a word's letter trigrams in order, max-pooled over the word.

    The hashed-trigram embedding (`HashedWordEmbedding`) is a bag: it averages a
    word's trigrams and forgets their order. This layer keeps it, as the character
    CNNs of Ma & Hovy (2016) and Lample et al. (2016) do: each trigram (itself a
    3-character unit, hashed as `LetterTrigramHashing` does) is embedded, a
    convolution of width `width` reads `width` consecutive trigrams (`width + 2`
    characters: "-ing#", "#mc" + capital...), and the word's vector is the max of
    each filter over its positions. It reads the trigram ids the model already has,
    so the features and the exported graph stay as they are.

    Args:
        num_buckets: trigram hash buckets (ids 1..num_buckets; 0 is "no trigram").
        filters: number of convolution filters, the output width.
        embedding_dim: width of the trigram embedding the convolution reads.
        width: trigrams per convolution window.
        activation: of the convolution, default "tanh".

    Call arguments:
        trigram_ids: int tensor `[batch, time, max_trigrams]`, 0 where no trigram.

    Returns:
        float tensor `[batch, time, filters]`; a word with no trigram (padding)
        gives zeros.

    Example:
        >>> layer = TrigramCNN(num_buckets=100, filters=8)
        >>> layer(np.array([[[3, 7, 9, 0], [0, 0, 0, 0]]])).shape
        (1, 2, 8)
    """

    def __init__(
        self, num_buckets, filters, embedding_dim=32, width=3, activation="tanh", **kwargs
    ):
        super().__init__(**kwargs)
        self.num_buckets = check_positive_int("num_buckets", num_buckets)
        self.filters = check_positive_int("filters", filters)
        self.embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        self.width = check_positive_int("width", width)
        self.activation = keras.activations.get(activation)

    def build(self, input_shape):
        self.embeddings = self.add_weight(
            shape=(self.num_buckets + 1, self.embedding_dim),
            initializer="uniform",
            name="embeddings",
        )
        self.kernel = self.add_weight(
            shape=(self.width, self.embedding_dim, self.filters),
            initializer="glorot_uniform",
            name="kernel",
        )
        self.bias = self.add_weight(shape=(self.filters,), initializer="zeros", name="bias")

    def call(self, trigram_ids):
        shape = ops.shape(trigram_ids)
        per_word = ops.reshape(ops.cast(trigram_ids, "int32"), (-1, shape[-1]))
        present = ops.greater(per_word, 0)
        # Row 0 is read for empty slots, but they are zeroed before the convolution, so
        # a word's features depend on its trigrams alone.
        vectors = ops.take(self.embeddings, per_word, axis=0)
        vectors = vectors * ops.expand_dims(ops.cast(present, vectors.dtype), -1)
        kernel = ops.cast(self.kernel, vectors.dtype)
        features = self.activation(ops.conv(vectors, kernel, padding="same") + self.bias)
        lowest = ops.cast(-1e4, features.dtype)
        pooled = ops.max(ops.where(ops.expand_dims(present, -1), features, lowest), axis=1)
        pooled = ops.where(ops.any(present, axis=1, keepdims=True), pooled, 0.0)
        return ops.reshape(ops.cast(pooled, self.compute_dtype), (shape[0], shape[1], self.filters))

    def compute_mask(self, trigram_ids, mask=None):
        return ops.any(ops.greater(trigram_ids, 0), axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_buckets=self.num_buckets,
            filters=self.filters,
            embedding_dim=self.embedding_dim,
            width=self.width,
            activation=keras.activations.serialize(self.activation),
        )
        return config
