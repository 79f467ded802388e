"""The built-in LSTM with a fused inference path on CPU."""

import keras
import tensorflow as tf

from slotkeras.layers.prepared import prepared

# Batches of at most this many sequences take the fused op: it wins on a single
# utterance, while on larger batches Keras' loop, which multiplies whole batches, is as
# fast or faster (docs/experiments/serving_time.md).
FUSED_MAX_BATCH = 4


def _gpu_present() -> bool:
    return bool(tf.config.list_logical_devices("GPU"))


@keras.saving.register_keras_serializable(package="slotkeras")
class FusedLSTM(keras.layers.LSTM):
    """`keras.layers.LSTM`, whose inference on CPU runs as one TensorFlow op.

    Training, and any machine with a GPU (where Keras runs cuDNN), use
    `keras.layers.LSTM` unchanged: same weights, same gradients. At inference on
    CPU, Keras steps a `while_loop` of a dozen small ops per time step, and for one
    short utterance that loop costs more than its arithmetic. This layer runs the
    whole sequence through TensorFlow's fused `BlockLSTMV2` kernel instead (its
    gate layout, input/forget/cell/output, is Keras'), so serving one utterance
    pays for one op per direction. That kernel is slower than Keras' loop on large
    batches, so it serves batches of up to `FUSED_MAX_BATCH` sequences.

    The outputs and states equal `keras.layers.LSTM`'s, masked steps included (up
    to float rounding).
    The fused path needs the mask to be padding at the end of each row (as every
    slotkeras input is; a backward layer reverses each row within its length) and
    the layer's plain form (tanh and sigmoid, a bias, float32, not stateful, not
    unrolled); otherwise, or when a mask has holes, or for larger batches, the
    parent's loop runs.

    Args: those of `keras.layers.LSTM`.

    Example:
        >>> layer = FusedLSTM(8, return_sequences=True)
        >>> layer(np.ones((2, 5, 3)), mask=np.arange(5) < [[5], [2]]).shape
        (2, 5, 8)
    """

    def prepared_weights(self) -> dict:
        """The fused op's weight matrix, kernel over recurrent kernel: laid out
        once for serving (`slotkeras.layers.prepared`), not at every call."""
        return {"fused_kernel": self._fused_kernel()}

    def _fused_kernel(self):
        return tf.concat([self.cell.kernel, self.cell.recurrent_kernel], axis=0)

    def _fusable(self, sequences, training) -> bool:
        cell = self.cell
        return (
            not training
            and not self.stateful
            and not self.unroll
            and cell.use_bias
            and cell.activation is keras.activations.tanh
            and cell.recurrent_activation is keras.activations.sigmoid
            and sequences.dtype == tf.float32
            and not _gpu_present()
        )

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        if not self._fusable(sequences, training):
            return super().inner_loop(sequences, initial_state, mask, training=training)
        batch, steps = tf.shape(sequences)[0], tf.shape(sequences)[1]
        use_fused = batch <= FUSED_MAX_BATCH
        if mask is None:
            lengths = tf.fill([batch], steps)
        else:
            mask = tf.cast(mask, tf.bool)
            lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
            right_padded = tf.reduce_all(tf.equal(mask, tf.sequence_mask(lengths, steps)))
            use_fused = tf.logical_and(use_fused, right_padded)

        def loop():
            last, outputs, states = super(FusedLSTM, self).inner_loop(
                sequences, initial_state, mask, training=training
            )
            return last, outputs, list(states)

        return tf.cond(
            use_fused, lambda: self._fused(sequences, initial_state, mask, lengths), loop
        )

    def _fused(self, sequences, initial_state, mask, lengths):
        """`inner_loop`'s (last output, outputs in Keras' order, [h, c]) by BlockLSTMV2,
        given each row's number of real steps."""
        cell = self.cell
        batch, steps = tf.shape(sequences)[0], tf.shape(sequences)[1]
        if mask is None:
            mask = tf.ones([batch, steps], tf.bool)
        if self.go_backwards:
            sequences = tf.reverse_sequence(sequences, lengths, seq_axis=1, batch_axis=0)
        h0, c0 = initial_state
        no_peephole = tf.zeros([cell.units], sequences.dtype)
        outputs = tf.raw_ops.BlockLSTMV2(
            seq_len_max=tf.cast(steps, tf.int64),
            x=tf.transpose(sequences, [1, 0, 2]),
            cs_prev=c0,
            h_prev=h0,
            w=prepared(self, "fused_kernel", self._fused_kernel),
            wci=no_peephole,
            wcf=no_peephole,
            wco=no_peephole,
            b=cell.bias,
            cell_clip=-1.0,
            use_peephole=False,
        )
        hidden = tf.transpose(outputs[6], [1, 0, 2])
        if self.return_state or not self.return_sequences or not self.zero_output_for_mask:
            # The state after each row's last real step (the initial one for empty rows).
            last = tf.stack([lengths - 1, tf.range(batch)], axis=1)
            has_steps = (lengths > 0)[:, None]
            h_last = tf.where(has_steps, tf.gather_nd(outputs[6], tf.maximum(last, 0)), h0)
            c_last = tf.where(has_steps, tf.gather_nd(outputs[1], tf.maximum(last, 0)), c0)
        else:
            # Nobody reads them (`call` returns the sequence only): skip the gathers.
            h_last, c_last = h0, c0
        if self.go_backwards:
            # Back to each word's own position, then in Keras' backward order (last
            # step first), which `Bidirectional` reverses again.
            hidden = tf.reverse(
                tf.reverse_sequence(hidden, lengths, seq_axis=1, batch_axis=0), axis=[1]
            )
            mask = tf.reverse(mask, axis=[1])
        # Masked steps: zeros, or (Keras without `zero_output_for_mask`) the output of
        # the step before, which is the last real one going forwards and none (zeros)
        # going backwards, where the padding comes first.
        fill = tf.zeros_like(hidden)
        if not self.zero_output_for_mask and not self.go_backwards:
            fill = tf.broadcast_to(h_last[:, None, :], tf.shape(hidden))
        hidden = tf.where(mask[:, :, None], hidden, fill)
        return h_last, hidden, [h_last, c_last]
