"""Peephole LSTM: the gates also look at the memory cell (Gers et al. 2002)."""

import keras
from keras import activations, constraints, initializers, ops, regularizers

from slotkeras.layers.argument_checks import check_positive_int, check_rate
from slotkeras.layers.projected_rnn import (
    DropoutRNNCell,
    ProjectedRNN,
    _seeded,
)

# `seed + offset` seeds the dropout masks; offsets 0-5 seed the weights.
_DROPOUT_SEED_OFFSET = 6


@keras.saving.register_keras_serializable(package="slotkeras")
class PeepholeLSTMCell(keras.layers.Layer, DropoutRNNCell):
    """Cell class for the peephole LSTM (one time step).

    A standard LSTM (`keras.layers.LSTMCell`) whose input and forget gates
    also see the previous memory cell `c(t-1)`, and whose output gate sees
    the new memory cell `c(t)`, through diagonal "peephole" weights:

    ```
    i    = recurrent_activation(x W_i + h(t-1) U_i + p_i * c(t-1) + b_i)
    f    = recurrent_activation(x W_f + h(t-1) U_f + p_f * c(t-1) + b_f)
    c(t) = f * c(t-1) + i * activation(x W_c + h(t-1) U_c + b_c)
    o    = recurrent_activation(x W_o + h(t-1) U_o + p_o * c(t) + b_o)
    h(t) = o * activation(c(t))
    ```

    The gate weights are fused in the order i, f, c, o exactly as in
    `keras.layers.LSTMCell`: `kernel` `[input_dim, 4 * units]`,
    `recurrent_kernel` `[units, 4 * units]`, `bias` `[4 * units]`, so weights
    copy between the two cells; with zero peepholes the cell *is* an LSTM.
    The peepholes are `input_gate_peephole_weights`,
    `forget_gate_peephole_weights` and `output_gate_peephole_weights`
    (`[units]` each), named as in `tf_keras.experimental.PeepholeLSTMCell`,
    which computes the same numbers. States are `[h, c]`.

    In the lecture's terms, `activation` is both g (on the cell input) and h
    (on the memory), `recurrent_activation` is the gates' f, and a forget
    gate of 1 means *keep*.

    Dropout follows `keras.layers.LSTMCell` with its default implementation:
    in training, `x` and `h(t-1)` (where they enter the gates; not `c`, nor
    the state) are multiplied by masks of zeros and `1 / (1 - rate)` drawn once
    per sequence, the same at every step and for the four gates (Gal &
    Ghahramani 2016).

    Args:
        units: Positive integer, dimensionality of the output and the memory.
        activation: Activation of the cell input and of the memory before the
            output gate. Default: `"tanh"`. `None` means linear.
        recurrent_activation: Activation of the gates. Default: `"sigmoid"`.
        use_bias: Boolean, whether the layer has the bias `bias`.
            Default: `True`.
        kernel_initializer: Initializer for `kernel`. Default:
            `"glorot_uniform"`.
        recurrent_initializer: Initializer for `recurrent_kernel`. Default:
            `"orthogonal"`.
        bias_initializer: Initializer for `bias`. Default: `"zeros"`.
        peephole_initializer: Initializer for the three peephole vectors.
            Default: `"glorot_uniform"` (tf_keras initializes them with its
            kernel initializer, also `"glorot_uniform"`). Use `"zeros"` to
            start from a plain LSTM.
        unit_forget_bias: Boolean, add 1 to the forget gate's bias at
            initialization (Jozefowicz et al. 2015). Default: `True`.
        kernel_regularizer: Regularizer for `kernel`. Default: `None`.
        recurrent_regularizer: Regularizer for `recurrent_kernel`.
            Default: `None`.
        bias_regularizer: Regularizer for `bias`. Default: `None`.
        peephole_regularizer: Regularizer for the peepholes. Default: `None`.
        kernel_constraint: Constraint for `kernel`. Default: `None`.
        recurrent_constraint: Constraint for `recurrent_kernel`.
            Default: `None`.
        bias_constraint: Constraint for `bias`. Default: `None`.
        peephole_constraint: Constraint for the peepholes. Default: `None`.
        dropout: Float in [0, 1), fraction of the input units to drop.
            Default: `0.0`.
        recurrent_dropout: Float in [0, 1), fraction of the units of
            `h(t-1)` to drop. Default: `0.0`.
        seed: Integer or `None`. When set, the random initializers that were
            given without a seed are seeded from it (a different offset per
            weight), so two cells with the same seed start from the same
            weights, and so are the dropout masks. Default: `None`.
        **kwargs: Base `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: A 2D tensor `(batch, features)`, the input at one time step.
        states: A list `[h_tm1, c_tm1]` of two 2D tensors `(batch, units)`.
        training: Python boolean, whether to apply dropout. Default: `False`.

    Returns `(h, [h, c])`, each of shape `(batch, units)`.

    Masking: handled by the wrapping `keras.layers.RNN` (or `PeepholeLSTM`);
    at a masked step the previous output and states are carried over.

    Example:

    >>> inputs = np.random.random((32, 10, 8))
    >>> rnn = keras.layers.RNN(PeepholeLSTMCell(4), return_sequences=True,
    ...                        return_state=True)
    >>> outputs, h, c = rnn(inputs)
    >>> outputs.shape, h.shape, c.shape
    ((32, 10, 4), (32, 4), (32, 4))

    Reference: F. A. Gers, N. N. Schraudolph, J. Schmidhuber, "Learning
    precise timing with LSTM recurrent networks", JMLR 3, 2002; Y. Gal,
    Z. Ghahramani, "A theoretically grounded application of dropout in
    recurrent neural networks", NeurIPS 2016.
    """

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        peephole_initializer="glorot_uniform",
        unit_forget_bias=True,
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        peephole_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        peephole_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        **kwargs,
    ):
        units = check_positive_int("units", units)
        dropout = check_rate("dropout", dropout)
        recurrent_dropout = check_rate("recurrent_dropout", recurrent_dropout)
        super().__init__(**kwargs)
        self.units = units
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias = use_bias

        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.peephole_initializer = initializers.get(peephole_initializer)
        self.unit_forget_bias = unit_forget_bias

        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.peephole_regularizer = regularizers.get(peephole_regularizer)

        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.peephole_constraint = constraints.get(peephole_constraint)

        self.dropout = dropout
        self.recurrent_dropout = recurrent_dropout
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(
            None if seed is None else seed + _DROPOUT_SEED_OFFSET
        )
        self.state_size = [self.units, self.units]
        self.output_size = self.units

    def build(self, input_shape):
        def seeded(initializer, offset):
            return _seeded(initializer, None if self.seed is None else self.seed + offset)

        self.kernel = self.add_weight(
            shape=(input_shape[-1], self.units * 4),
            name="kernel",
            initializer=seeded(self.kernel_initializer, 0),
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, self.units * 4),
            name="recurrent_kernel",
            initializer=seeded(self.recurrent_initializer, 1),
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
        )
        if self.use_bias:
            bias_initializer = seeded(self.bias_initializer, 2)
            if self.unit_forget_bias:

                def fused_bias_initializer(_, *args, **kwargs):
                    return ops.concatenate(
                        [
                            bias_initializer((self.units,), *args, **kwargs),
                            initializers.get("ones")((self.units,), *args, **kwargs),
                            bias_initializer((self.units * 2,), *args, **kwargs),
                        ]
                    )

            else:
                fused_bias_initializer = bias_initializer
            self.bias = self.add_weight(
                shape=(self.units * 4,),
                name="bias",
                initializer=fused_bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        else:
            self.bias = None
        for k, gate in enumerate(("input", "forget", "output")):
            weight = self.add_weight(
                shape=(self.units,),
                name=f"{gate}_gate_peephole_weights",
                initializer=seeded(self.peephole_initializer, 3 + k),
                regularizer=self.peephole_regularizer,
                constraint=self.peephole_constraint,
            )
            setattr(self, f"{gate}_gate_peephole_weights", weight)
        super().build(input_shape)

    def project_inputs(self, inputs):
        """Returns `inputs @ kernel + bias`, for one step or a whole sequence."""
        z = ops.matmul(inputs, self.kernel)
        if self.use_bias:
            z = ops.add(z, self.bias)
        return z

    def recurrent_weights(self):
        """The weights `recurrent_step` reads, in its `weights` order."""
        return (
            self.recurrent_kernel,
            self.input_gate_peephole_weights,
            self.forget_gate_peephole_weights,
            self.output_gate_peephole_weights,
        )

    def recurrent_step(self, projected_inputs, states, weights=None, recurrent_mask=None):
        """One step given the already projected input `x(t) W + b`.

        `call` is `recurrent_step(project_inputs(inputs), states)`, with the
        dropout masks in training. `PeepholeLSTM` projects all time steps at
        once, reads `recurrent_weights()` once, and loops over this with
        `weights` set. `recurrent_mask` multiplies `h(t-1)` where it enters
        the gates.
        """
        if weights is None:
            weights = self.recurrent_weights()
        recurrent_kernel, p_i, p_f, p_o = weights
        h_tm1, c_tm1 = states[0], states[1]
        h_in = h_tm1 if recurrent_mask is None else ops.multiply(h_tm1, recurrent_mask)
        z = ops.add(projected_inputs, ops.matmul(h_in, recurrent_kernel))
        z_i, z_f, z_c, z_o = ops.split(z, 4, axis=-1)
        i = self.recurrent_activation(z_i + p_i * c_tm1)
        f = self.recurrent_activation(z_f + p_f * c_tm1)
        c = f * c_tm1 + i * self.activation(z_c)
        o = self.recurrent_activation(z_o + p_o * c)
        h = o * self.activation(c)
        return h, [h, c]

    def call(self, inputs, states, training=False):
        recurrent_mask = None
        if training and self.dropout > 0:
            inputs = ops.multiply(inputs, self.get_dropout_mask(inputs))
        if training and self.recurrent_dropout > 0:
            recurrent_mask = self.get_recurrent_dropout_mask(states[0])
        return self.recurrent_step(
            self.project_inputs(inputs), states, recurrent_mask=recurrent_mask
        )

    def get_initial_state(self, batch_size=None):
        return [ops.zeros((batch_size, d), dtype=self.compute_dtype) for d in self.state_size]

    def get_config(self):
        config = {
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "recurrent_activation": activations.serialize(self.recurrent_activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "peephole_initializer": initializers.serialize(self.peephole_initializer),
            "unit_forget_bias": self.unit_forget_bias,
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "recurrent_regularizer": regularizers.serialize(self.recurrent_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "peephole_regularizer": regularizers.serialize(self.peephole_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "recurrent_constraint": constraints.serialize(self.recurrent_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
            "peephole_constraint": constraints.serialize(self.peephole_constraint),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
        }
        base_config = super().get_config()
        return {**base_config, **config}


# Arguments of `PeepholeLSTMCell.__init__` that `PeepholeLSTM` forwards to its cell.
_CELL_ARGS = (
    "units",
    "activation",
    "recurrent_activation",
    "use_bias",
    "kernel_initializer",
    "recurrent_initializer",
    "bias_initializer",
    "peephole_initializer",
    "unit_forget_bias",
    "kernel_regularizer",
    "recurrent_regularizer",
    "bias_regularizer",
    "peephole_regularizer",
    "kernel_constraint",
    "recurrent_constraint",
    "bias_constraint",
    "peephole_constraint",
    "dropout",
    "recurrent_dropout",
    "seed",
)


@keras.saving.register_keras_serializable(package="slotkeras")
class PeepholeLSTM(ProjectedRNN):
    """Peephole LSTM layer over a whole sequence (fast `PeepholeLSTMCell`).

    Computes the same numbers as `keras.layers.RNN(PeepholeLSTMCell(...))`,
    but projects the inputs of all time steps with one matrix product
    (`x W + b`, all four gates) before the recurrent loop, so that each step
    only does the recurrent part (the saving grows with the input width;
    with narrow inputs on CPU both run at about the same speed). It never
    uses cuDNN (cuDNN has no peepholes). See `PeepholeLSTMCell` for the
    formulation.

    Args:
        units, activation, recurrent_activation, use_bias,
        kernel_initializer, recurrent_initializer, bias_initializer,
        peephole_initializer, unit_forget_bias, kernel_regularizer,
        recurrent_regularizer, bias_regularizer, peephole_regularizer,
        kernel_constraint, recurrent_constraint, bias_constraint,
        peephole_constraint, dropout, recurrent_dropout, seed: As for
            `PeepholeLSTMCell` (same defaults).
        activity_regularizer: Regularizer applied to the layer's output.
            Default: `None`.
        return_sequences: Boolean, return the whole output sequence instead
            of the last output. Default: `False`.
        return_state: Boolean, also return the last states `h` and `c`.
            Default: `False`.
        go_backwards: Boolean, process the sequence backwards and return the
            reversed sequence. Default: `False`.
        stateful: Boolean, carry the last states of each batch over to the
            next batch. Default: `False`.
        unroll: Boolean, unroll the loop (short sequences only).
            Default: `False`.
        **kwargs: Base layer arguments (`name`, `dtype`, `trainable`,
            `zero_output_for_mask`).

    Call arguments:
        sequences: A 3D tensor `(batch, timesteps, features)`.
        initial_state: Optional list `[h, c]` of tensors `(batch, units)`.
        mask: Optional boolean tensor `(batch, timesteps)`; `False` steps are
            skipped (states and output carried over). Propagated from an
            `Embedding(mask_zero=True)` or `Masking` layer.
        training: Python boolean, whether to apply dropout. Default: `False`.

    Example:

    >>> inputs = np.random.random((32, 10, 8))
    >>> PeepholeLSTM(4, return_sequences=True)(inputs).shape
    (32, 10, 4)
    >>> outputs, h, c = PeepholeLSTM(4, return_state=True)(inputs)
    >>> c.shape
    (32, 4)

    Reference: Gers, Schraudolph & Schmidhuber, JMLR 2002 (see
    `PeepholeLSTMCell`).
    """

    cell_args = _CELL_ARGS

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        peephole_initializer="glorot_uniform",
        unit_forget_bias=True,
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        peephole_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        peephole_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        **kwargs,
    ):
        cell = PeepholeLSTMCell(
            units,
            activation=activation,
            recurrent_activation=recurrent_activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            peephole_initializer=peephole_initializer,
            unit_forget_bias=unit_forget_bias,
            kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer,
            peephole_regularizer=peephole_regularizer,
            kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint,
            bias_constraint=bias_constraint,
            peephole_constraint=peephole_constraint,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            seed=seed,
            dtype=kwargs.get("dtype", None),
            trainable=kwargs.get("trainable", True),
            name="peephole_lstm_cell",
        )
        super().__init__(
            cell,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            unroll=unroll,
            activity_regularizer=activity_regularizer,
            **kwargs,
        )
        self.input_spec = keras.layers.InputSpec(ndim=3)
