"""Utterance vector from per-token vectors, ignoring padding."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="slotkeras")
class MaskedPooling(keras.layers.Layer):
    """Concatenates the masked mean and the masked max over time.

    Feeds the intent head: one vector per utterance from the recurrent stack's
    per-token outputs, where padded steps count for nothing.

    Call arguments:
        inputs: float tensor `[batch, time, features]`.
        mask: bool tensor `[batch, time]`, True on real tokens (optional).

    Returns:
        float tensor `[batch, 2 * features]`; all-padding utterances give zeros.

    Example:
        >>> MaskedPooling()(np.ones((2, 5, 3)), mask=np.ones((2, 5), bool)).shape
        (2, 6)
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            mask = ops.ones(ops.shape(inputs)[:-1], dtype="bool")
        weights = ops.expand_dims(ops.cast(mask, inputs.dtype), -1)
        count = ops.maximum(ops.sum(weights, axis=1), 1.0)
        mean = ops.sum(inputs * weights, axis=1) / count
        very_negative = ops.cast(-1e9, inputs.dtype)
        maximum = ops.max(ops.where(weights > 0, inputs, very_negative), axis=1)
        maximum = ops.where(ops.sum(weights, axis=1) > 0, maximum, ops.zeros_like(maximum))
        return ops.concatenate([mean, maximum], axis=-1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 2 * input_shape[-1])
