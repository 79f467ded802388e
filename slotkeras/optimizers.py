"""Adam with row-wise ("lazy") updates for embedding tables."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="slotkeras")
class LazyAdam(keras.optimizers.Adam):
    """Adam that updates only the rows of an embedding table that a batch used.

    Dense gradients get Keras' Adam update unchanged. A sparse gradient
    (`tf.IndexedSlices`, what `ops.take`/`Embedding` lookups give) updates the first
    and second moments and the weights of the rows it names and leaves every other
    row as it is, instead of turning the gradient into a dense table and decaying
    the moments of all rows. For the letter-trigram table, of which a batch touches
    a small share of the rows, this removes most of the optimizer's work (what that
    saves an epoch: docs/benchmarks.md). It is the "lazy" Adam known from TensorFlow
    Addons and PyTorch's SparseAdam: bias correction uses the global step, and rows
    unseen in a batch keep their moments until they are seen again.

    Args: those of `keras.optimizers.Adam` (`amsgrad` is not supported).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.amsgrad:
            raise ValueError(
                "Received an invalid value for argument `amsgrad`, expected False "
                "(LazyAdam has no AMSGrad variant), got True."
            )

    def update_step(self, gradient, variable, learning_rate):
        if not isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        lr = tf.cast(learning_rate, dtype)
        step = tf.cast(self.iterations + 1, dtype)
        beta_1 = tf.cast(self.beta_1, dtype)
        beta_2 = tf.cast(self.beta_2, dtype)
        alpha = lr * tf.sqrt(1 - tf.pow(beta_2, step)) / (1 - tf.pow(beta_1, step))

        # One summed gradient row per distinct index (a batch repeats trigrams).
        rows, positions = tf.unique(tf.cast(gradient.indices, tf.int32))
        values = tf.math.unsorted_segment_sum(
            tf.cast(gradient.values, dtype), positions, tf.shape(rows)[0]
        )
        index = self._get_variable_index(variable)
        m = self._momentums[index]
        v = self._velocities[index]
        m_rows = tf.gather(m.value, rows) * beta_1 + values * (1 - beta_1)
        v_rows = tf.gather(v.value, rows) * beta_2 + tf.square(values) * (1 - beta_2)
        self.assign(m, tf.IndexedSlices(m_rows, rows))
        self.assign(v, tf.IndexedSlices(v_rows, rows))
        self.assign_sub(
            variable,
            tf.IndexedSlices(alpha * m_rows / (tf.sqrt(v_rows) + self.epsilon), rows),
        )
