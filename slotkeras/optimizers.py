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


def _summed_rows(indices, *values):
    """The distinct rows of a lookup's `indices` (a batch repeats rows) and, for each of
    `values` (one entry per slice), its sums over each row's slices."""
    rows, positions = tf.unique(tf.cast(indices, tf.int32))
    count = tf.shape(rows)[0]
    return rows, [tf.math.unsorted_segment_sum(v, positions, count) for v in values]


# A lookup's gradient whose slices hold fewer values than this share of its table
# takes the fused update with Keras' squares restored row by row; a denser one takes
# Keras' own update, since summing many slices per row costs more than the dense
# passes saved (docs/experiments/fused_adam.md).
FUSED_SLICE_SHARE = 0.25


class _WarmedUpAverage:
    """The weight average (`use_ema`) with TensorFlow's `ExponentialMovingAverage`
    `num_updates` rule when `ema_warmup`: at step t the momentum is
    min(`ema_momentum`, (1 + t) / (10 + t)). Keras's fixed momentum keeps the average
    near the initial weights for the first few hundred steps, which is all a training
    set of a few dozen utterances gives; warmed up, the average follows the weights
    while they move fast and settles to `ema_momentum` after about 900 steps."""

    def _update_model_variables_moving_average(self, trainable_variables):
        if not self.ema_warmup:
            return super()._update_model_variables_moving_average(trainable_variables)
        step = tf.cast(self.iterations, tf.float32)
        warm = tf.minimum(tf.cast(self.ema_momentum, tf.float32), (1.0 + step) / (10.0 + step))
        # The first step copies the weights, as Keras's own average does.
        warm = warm * tf.cast(tf.not_equal(self.iterations, 0), tf.float32)
        for variable, average in zip(trainable_variables, self._model_variables_moving_average):
            if average is not None:
                momentum = tf.cast(warm, variable.dtype)
                average.assign(momentum * average + (1 - momentum) * variable)


@keras.saving.register_keras_serializable(package="slotkeras")
class FusedAdam(_WarmedUpAverage, keras.optimizers.Adam):
    """Adam, each weight's update one fused, in-place kernel.

    Keras' `Adam.update_step` is written with backend-neutral ops: about a dozen
    elementwise passes over each weight and its two moments per step, each allocating
    a temporary. For a large embedding table updated densely at every step (the
    65,536-row neighbour-pair table) those passes are a large share of a CPU epoch
    (docs/experiments/fused_adam.md). Here the update is TensorFlow's `ResourceApplyAdam`, one pass
    that reads the gradient and writes the weight and its moments in place. The
    optimizer variables are Keras' Adam's, so checkpoints and saved models are
    interchangeable with it. Dense gradients agree with Keras' Adam to float32 rounding
    (the kernel computes `1 - beta_1` and `1 - beta_2` from the float32 betas).

    A lookup's gradient (`tf.IndexedSlices`, with a row repeated as often as the batch
    looks it up) updates every row: every row's moments decay at every step
    (`LazyAdam` is the variant that does not). Keras' Adam squares each slice before it
    sums a row's slices into the second moment; Adam as Kingma & Ba define it squares
    the row's summed gradient. `square_slices` chooses:

    - True (the default): Keras' update. Before the kernel runs, each looked-up row's
      second moment is raised by what squaring the summed row would miss of the sum of
      its squared slices. Where the slices hold a large share of the table's values
      (`FUSED_SLICE_SHARE`), Keras' own update runs instead, being the cheaper there.
    - False: Adam on the summed gradient, fused for every lookup.

    AMSGrad, and weights that a distribution strategy mirrors, take Keras' update.

    Args:
        square_slices: see above.
        ema_warmup: warm the weight average up (`_WarmedUpAverage`), default False.
        Others: those of `keras.optimizers.Adam`.
    """

    def __init__(self, *args, square_slices: bool = True, ema_warmup: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.square_slices = square_slices
        self.ema_warmup = ema_warmup

    def get_config(self):
        config = super().get_config()
        return {**config, "square_slices": self.square_slices, "ema_warmup": self.ema_warmup}

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        handles = [
            _resource_handle(v) for v in (variable, self._momentums[index], self._velocities[index])
        ]
        if self.amsgrad or any(handle is None for handle in handles):
            return super().update_step(gradient, variable, learning_rate)
        if not (isinstance(gradient, tf.IndexedSlices) and self.square_slices):
            self._fused_step(handles, tf.convert_to_tensor(gradient), variable.dtype, learning_rate)
            return None

        def fused_with_keras_squares():
            dense = self._raise_second_moment(gradient, handles[2], variable.dtype)
            self._fused_step(handles, dense, variable.dtype, learning_rate)

        def keras_update():
            super(FusedAdam, self).update_step(gradient, variable, learning_rate)

        sparse_share = tf.cast(tf.size(gradient.values), tf.float32) / tf.cast(
            tf.size(variable), tf.float32
        )
        tf.cond(sparse_share < FUSED_SLICE_SHARE, fused_with_keras_squares, keras_update)
        return None

    def _fused_step(self, handles, gradient, dtype, learning_rate):
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
            grad=tf.cast(gradient, dtype),
        )

    def _raise_second_moment(self, gradient, velocity, dtype):
        """The dense gradient of a lookup, after adding to its rows of the second moment
        (`velocity`, a resource handle) the share of Keras' sum of squared slices that
        the kernel, which squares the summed row, would miss."""
        beta_2 = tf.cast(self.beta_2, dtype)
        values = tf.cast(gradient.values, dtype)
        rows, (summed, squares) = _summed_rows(gradient.indices, values, tf.square(values))
        # The kernel leaves beta_2 * v + (1 - beta_2) * g^2. With v first raised by
        # (1 - beta_2) / beta_2 * (squares - g^2) that is Keras' beta_2 * v + (1 - beta_2)
        # * squares (by Cauchy-Schwarz, squares >= g^2 / k for a row seen k times, so the
        # result stays positive).
        excess = (squares - tf.square(summed)) * ((1 - beta_2) / beta_2)
        tf.raw_ops.ResourceScatterAdd(resource=velocity, indices=rows, updates=excess)
        shape = tf.cast(gradient.dense_shape, tf.int32)
        return tf.scatter_nd(tf.expand_dims(rows, 1), summed, shape)


@keras.saving.register_keras_serializable(package="slotkeras")
class LazyAdam(_WarmedUpAverage, keras.optimizers.Adam):
    """Adam that updates only the rows of an embedding table that a batch used.

    Dense gradients get Keras' Adam update unchanged. A sparse gradient
    (`tf.IndexedSlices`, what `ops.take`/`Embedding` lookups give) updates the first
    and second moments and the weights of the rows it names and leaves every other
    row as it is, instead of turning the gradient into a dense table and decaying
    the moments of all rows. For the letter-trigram table, of which a batch touches
    a small share of the rows, this removes most of the optimizer's work (what that
    saves an epoch: docs/experiments/fused_adam.md). It is the "lazy" Adam known from TensorFlow
    Addons and PyTorch's SparseAdam: bias correction uses the global step, and rows
    unseen in a batch keep their moments until they are seen again.

    Args:
        ema_warmup: warm the weight average up (`_WarmedUpAverage`), default False.
        Others: those of `keras.optimizers.Adam` (`amsgrad` is not supported).
    """

    def __init__(self, *args, ema_warmup: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.ema_warmup = ema_warmup
        if self.amsgrad:
            raise ValueError(
                "Received an invalid value for argument `amsgrad`, expected False "
                "(LazyAdam has no AMSGrad variant), got True."
            )

    def get_config(self):
        return {**super().get_config(), "ema_warmup": self.ema_warmup}

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
        rows, (values,) = _summed_rows(gradient.indices, tf.cast(gradient.values, dtype))
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
