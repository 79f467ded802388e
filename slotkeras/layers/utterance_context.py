"""Small plumbing layers of the tagger: the padding mask and per-token broadcasting."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="slotkeras")
class PaddingMask(keras.layers.Layer):
    """True where a 1-of-N index is a real token (index > 0), False on padding.

    Call arguments:
        word_ids: int tensor `[batch, time]`.

    Returns:
        bool tensor `[batch, time]`.
    """

    def call(self, word_ids):
        return ops.greater(word_ids, 0)

    def compute_output_spec(self, word_ids):
        return keras.KerasTensor(word_ids.shape, dtype="bool")


@keras.saving.register_keras_serializable(package="slotkeras")
class BroadcastToTokens(keras.layers.Layer):
    """Repeats an utterance vector at every time step of a sequence.

    Call arguments:
        inputs: `[vector, sequence]` with `vector` `[batch, features]` and
            `sequence` `[batch, time, ...]` giving the time dimension.

    Returns:
        `[batch, time, features]`.
    """

    def call(self, inputs):
        vector, sequence = inputs
        steps = ops.shape(sequence)[1]
        return ops.repeat(ops.expand_dims(vector, 1), steps, axis=1)

    def compute_output_shape(self, input_shapes):
        vector_shape, sequence_shape = input_shapes
        return (vector_shape[0], sequence_shape[1], vector_shape[-1])

    def compute_mask(self, inputs, mask=None):
        return None
