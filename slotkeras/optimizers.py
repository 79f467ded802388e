"""Adam with one fused update per weight, and Adam with row-wise ("lazy") updates for
embedding tables."""

import keras
import tensorflow as tf


def _resource_handle(variable):
    """The resource handle of a plain TensorFlow variable, or None for a distributed
    one (whose per-device copies only the strategy's update path may touch)."""
    if isinstance(variable, keras.Variable):
        variable = variable.value
    if isinstance(variable, tf.distribute.DistributedValues):
        return None
    return getattr(variable, "handle", None)


@keras.saving.register_keras_serializable(package="slotkeras")
class FusedAdam(keras.optimizers.Adam):
    """Adam, each weight's update one fused, in-place kernel.

    Keras' `Adam.update_step` is written with backend-neutral ops: about a dozen
    elementwise passes over each weight and its two moments per step, each allocating
    a temporary. For the embedding tables (millions of rows, updated densely at every
    step) those passes are a large share of a CPU epoch (docs/benchmarks.md). Here the
    update is TensorFlow's `ResourceApplyAdam`, one pass that reads the gradient and
    writes the weight and its moments in place. The optimizer variables are Keras'
    Adam's, so checkpoints and saved models are interchangeable with it.

    It is Adam as Kingma & Ba define it, on the gradient of the loss. A sparse gradient
    (an embedding lookup's `tf.IndexedSlices`) is summed into the dense gradient of
    its table first, and every row's moments decay at every step (`LazyAdam` is the
    variant that does not). Keras' Adam differs in one point: it squares a sparse
    gradient's slices before it sums those of a row looked up several times in a batch,
    so such a row's second moment gets the sum of the squares, not the square of its
    gradient. Dense gradients agree with Keras' Adam to float32 rounding (the kernel
    computes `1 - beta_1` and `1 - beta_2` from the float32 betas).

    AMSGrad, and weights that a distribution strategy mirrors, take Keras' update.

    Args: those of `keras.optimizers.Adam`.
    """

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        handles = [
            _resource_handle(v) for v in (variable, self._momentums[index], self._velocities[index])
        ]
        if self.amsgrad or any(handle is None for handle in handles):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        beta_1 = tf.cast(self.beta_1, dtype)
        beta_2 = tf.cast(self.beta_2, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=handles[0],
            m=handles[1],
            v=handles[2],
            beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, dtype),
            beta1=beta_1,
            beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(tf.convert_to_tensor(gradient), dtype),
        )


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
