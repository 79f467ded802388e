"""Jordan recurrent network: the memory is the previous *output*, not the hidden state."""

import keras
from keras import activations, constraints, initializers, ops, regularizers

from slotkeras.layers.argument_checks import check_positive_int, check_rate
from slotkeras.layers.projected_rnn import (
    DropoutRNNCell,
    ProjectedRNN,
    _seeded,
)

# `seed + offset` seeds the dropout masks; offsets 0-4 seed the weights.
_DROPOUT_SEED_OFFSET = 5


@keras.saving.register_keras_serializable(package="slotkeras")
class JordanRNNCell(keras.layers.Layer, DropoutRNNCell):
    """Cell class for the Jordan recurrent network (one time step).

    An Elman network (`keras.layers.SimpleRNNCell`) stores its hidden layer
    and feeds it back at the next step. A Jordan network stores its *output*
    instead:

    ```
    h(t) = activation(x(t) W + y(t-1) U + b)
    y(t) = output_activation(h(t) V + c)
    ```

    where `W` is `kernel` (`[input_dim, units]`), `U` is `recurrent_kernel`
    (`[output_units, units]`), `b` is `bias` (`[units]`), `V` is
    `output_kernel` (`[units, output_units]`) and `c` is `output_bias`
    (`[output_units]`). The state is `[y(t)]` and the cell's output is `y(t)`,
    so `state_size == output_size == output_units`; `y(0)` is zeros.

    Mesnil et al. feed back the label distribution itself: a single Jordan
    layer with `output_activation="softmax"` and `output_units` equal to the
    number of slot labels is the whole tagger. In a stacked tagger the
    hidden Jordan layers instead use a `tanh` output layer of width `units`
    (the defaults), and a separate classifier sits on top.

    Dropout follows `keras.layers.SimpleRNNCell`: in training, `x(t)` and `y(t-1)`
    (where it enters the hidden layer, not the state) are multiplied by masks of
    zeros and `1 / (1 - rate)` drawn once per sequence and the same at every step
    (Gal & Ghahramani 2016).

    Args:
        units: Positive integer, width of the hidden layer `h`.
        output_units: Positive integer or `None`, width of the output `y`
            (which is also the fed-back memory). Default: `None`, meaning
            `units`.
        activation: Activation of the hidden layer. Default: `"tanh"`.
            `None` means linear.
        output_activation: Activation of the output layer. Default: `"tanh"`.
            Use `"softmax"` to feed back a label distribution.
        use_bias: Boolean, whether the hidden and output layers have the biases
            `bias` and `output_bias`. Default: `True`.
        kernel_initializer: Initializer for `kernel`. Default:
            `"glorot_uniform"`.
        recurrent_initializer: Initializer for `recurrent_kernel`. Default:
            `"orthogonal"`.
        output_initializer: Initializer for `output_kernel`. Default:
            `"glorot_uniform"`.
        bias_initializer: Initializer for `bias` and `output_bias`. Default:
            `"zeros"`.
        kernel_regularizer: Regularizer for `kernel`. Default: `None`.
        recurrent_regularizer: Regularizer for `recurrent_kernel`.
            Default: `None`.
        output_regularizer: Regularizer for `output_kernel`. Default: `None`.
        bias_regularizer: Regularizer for `bias` and `output_bias`.
            Default: `None`.
        kernel_constraint: Constraint for `kernel`. Default: `None`.
        recurrent_constraint: Constraint for `recurrent_kernel`.
            Default: `None`.
        output_constraint: Constraint for `output_kernel`. Default: `None`.
        bias_constraint: Constraint for `bias` and `output_bias`.
            Default: `None`.
        dropout: Float in [0, 1), fraction of the input units to drop.
            Default: `0.0`.
        recurrent_dropout: Float in [0, 1), fraction of the fed-back output
            units to drop. Default: `0.0`.
        seed: Integer or `None`. When set, the random initializers that were
            given without a seed are seeded from it (a different offset per
            weight), so two cells with the same seed start from the same
            weights, and so are the dropout masks. Default: `None`.
        **kwargs: Base `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: A 2D tensor `(batch, features)`, the input at one time step.
        states: A list with one 2D tensor `(batch, output_units)`, the
            previous output `y(t-1)`.
        training: Python boolean, whether to apply dropout. Default: `False`.

    Returns `(y, [y])`, `y` of shape `(batch, output_units)`.

    Masking: handled by the wrapping `keras.layers.RNN` (or `JordanRNN`); at
    a masked step the previous output and state are carried over unchanged.

    Example:

    >>> inputs = np.random.random((32, 10, 8))
    >>> rnn = keras.layers.RNN(JordanRNNCell(4), return_sequences=True)
    >>> rnn(inputs).shape
    (32, 10, 4)
    >>> tagger = keras.layers.RNN(
    ...     JordanRNNCell(16, output_units=5, output_activation="softmax"),
    ...     return_sequences=True)
    >>> tagger(inputs).shape
    (32, 10, 5)

    Reference: M. I. Jordan, "Serial order: a parallel distributed processing
    approach", 1986; G. Mesnil, X. He, L. Deng, Y. Bengio, "Investigation of
    recurrent-neural-network architectures and learning methods for spoken
    language understanding", Interspeech 2013; Y. Gal, Z. Ghahramani, "A
    theoretically grounded application of dropout in recurrent neural
    networks", NeurIPS 2016.
    """

    def __init__(
        self,
        units,
        output_units=None,
        activation="tanh",
        output_activation="tanh",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        output_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        output_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        output_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        **kwargs,
    ):
        units = check_positive_int("units", units)
        output_units = check_positive_int("output_units", output_units, allow_none=True)
        dropout = check_rate("dropout", dropout)
        recurrent_dropout = check_rate("recurrent_dropout", recurrent_dropout)
        super().__init__(**kwargs)
        self.units = units
        self.output_units = units if output_units is None else output_units
        self.activation = activations.get(activation)
        self.output_activation = activations.get(output_activation)
        self.use_bias = use_bias

        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.output_initializer = initializers.get(output_initializer)
        self.bias_initializer = initializers.get(bias_initializer)

        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.output_regularizer = regularizers.get(output_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)

        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.output_constraint = constraints.get(output_constraint)
        self.bias_constraint = constraints.get(bias_constraint)

        self.dropout = dropout
        self.recurrent_dropout = recurrent_dropout
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(
            None if seed is None else seed + _DROPOUT_SEED_OFFSET
        )
        self.state_size = self.output_units
        self.output_size = self.output_units

    def build(self, input_shape):
        def seeded(initializer, offset):
            return _seeded(initializer, None if self.seed is None else self.seed + offset)

        # Hidden layer: kernel, recurrent_kernel, bias.
        self.kernel = self.add_weight(
            shape=(input_shape[-1], self.units),
            name="kernel",
            initializer=seeded(self.kernel_initializer, 0),
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.output_units, self.units),
            name="recurrent_kernel",
            initializer=seeded(self.recurrent_initializer, 1),
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(self.units,),
                name="bias",
                initializer=seeded(self.bias_initializer, 2),
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        # Output layer: output_kernel, output_bias.
        self.output_kernel = self.add_weight(
            shape=(self.units, self.output_units),
            name="output_kernel",
            initializer=seeded(self.output_initializer, 3),
            regularizer=self.output_regularizer,
            constraint=self.output_constraint,
        )
        self.output_bias = None
        if self.use_bias:
            self.output_bias = self.add_weight(
                shape=(self.output_units,),
                name="output_bias",
                initializer=seeded(self.bias_initializer, 4),
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        super().build(input_shape)

    def project_inputs(self, inputs):
        """Returns `inputs @ kernel + bias`, for one step or a whole sequence."""
        z = ops.matmul(inputs, self.kernel)
        if self.use_bias:
            z = ops.add(z, self.bias)
        return z

    def recurrent_weights(self):
        """The weights `recurrent_step` reads, in its `weights` order."""
        return (self.recurrent_kernel, self.output_kernel, self.output_bias)

    def recurrent_step(self, projected_inputs, states, weights=None, recurrent_mask=None):
        """One step given the already projected input `x(t) W + b`.

        `call` is `recurrent_step(project_inputs(inputs), states)`, with the
        dropout masks in training. `JordanRNN` projects all time steps at
        once, reads `recurrent_weights()` once, and loops over this with
        `weights` set. `recurrent_mask` multiplies `y(t-1)` where it enters
        the hidden layer.
        """
        if weights is None:
            weights = self.recurrent_weights()
        recurrent_kernel, output_kernel, output_bias = weights
        y_tm1 = states[0] if isinstance(states, (list, tuple)) else states
        y_in = y_tm1 if recurrent_mask is None else ops.multiply(y_tm1, recurrent_mask)
        h = ops.add(projected_inputs, ops.matmul(y_in, recurrent_kernel))
        if self.activation is not None:
            h = self.activation(h)
        y = ops.matmul(h, output_kernel)
        if output_bias is not None:
            y = ops.add(y, output_bias)
        if self.output_activation is not None:
            y = self.output_activation(y)
        new_states = [y] if isinstance(states, (list, tuple)) else y
        return y, new_states

    def call(self, inputs, states, training=False):
        recurrent_mask = None
        if training and self.dropout > 0:
            inputs = ops.multiply(inputs, self.get_dropout_mask(inputs))
        if training and self.recurrent_dropout > 0:
            y_tm1 = states[0] if isinstance(states, (list, tuple)) else states
            recurrent_mask = self.get_recurrent_dropout_mask(y_tm1)
        return self.recurrent_step(
            self.project_inputs(inputs), states, recurrent_mask=recurrent_mask
        )

    def get_initial_state(self, batch_size=None):
        return [ops.zeros((batch_size, self.output_units), dtype=self.compute_dtype)]

    def get_config(self):
        config = {
            "units": self.units,
            "output_units": self.output_units,
            "activation": activations.serialize(self.activation),
            "output_activation": activations.serialize(self.output_activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
            "output_initializer": initializers.serialize(self.output_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "recurrent_regularizer": regularizers.serialize(self.recurrent_regularizer),
            "output_regularizer": regularizers.serialize(self.output_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "recurrent_constraint": constraints.serialize(self.recurrent_constraint),
            "output_constraint": constraints.serialize(self.output_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
        }
        base_config = super().get_config()
        return {**base_config, **config}


# Arguments of `JordanRNNCell.__init__` that `JordanRNN` forwards to its cell.
_CELL_ARGS = (
    "units",
    "output_units",
    "activation",
    "output_activation",
    "use_bias",
    "kernel_initializer",
    "recurrent_initializer",
    "output_initializer",
    "bias_initializer",
    "kernel_regularizer",
    "recurrent_regularizer",
    "output_regularizer",
    "bias_regularizer",
    "kernel_constraint",
    "recurrent_constraint",
    "output_constraint",
    "bias_constraint",
    "dropout",
    "recurrent_dropout",
    "seed",
)


@keras.saving.register_keras_serializable(package="slotkeras")
class JordanRNN(ProjectedRNN):
    """Jordan recurrent layer over a whole sequence (fast `JordanRNNCell`).

    Computes the same numbers as `keras.layers.RNN(JordanRNNCell(...))`, but
    projects the inputs of all time steps with one matrix product
    (`x W + b`) before the recurrent loop, so that each step only does the
    recurrent part (the saving grows with the input width; with narrow inputs
    on CPU both run at about the same speed). See `JordanRNNCell` for the
    formulation.

    Args:
        units, output_units, activation, output_activation, use_bias,
        kernel_initializer, recurrent_initializer, output_initializer,
        bias_initializer, kernel_regularizer, recurrent_regularizer,
        output_regularizer, bias_regularizer, kernel_constraint,
        recurrent_constraint, output_constraint, bias_constraint, dropout,
        recurrent_dropout, seed: As for `JordanRNNCell` (same defaults).
        activity_regularizer: Regularizer applied to the layer's output.
            Default: `None`.
        return_sequences: Boolean, return the whole output sequence instead
            of the last output. Default: `False`.
        return_state: Boolean, also return the last state `y`.
            Default: `False`.
        go_backwards: Boolean, process the sequence backwards and return the
            reversed sequence. Default: `False`.
        stateful: Boolean, carry the last state of each batch over to the
            next batch. Default: `False`.
        unroll: Boolean, unroll the loop (short sequences only).
            Default: `False`.
        **kwargs: Base layer arguments (`name`, `dtype`, `trainable`,
            `zero_output_for_mask`).

    Call arguments:
        sequences: A 3D tensor `(batch, timesteps, features)`.
        initial_state: Optional list with one tensor `(batch, output_units)`.
        mask: Optional boolean tensor `(batch, timesteps)`; `False` steps are
            skipped (state and output carried over). Propagated from an
            `Embedding(mask_zero=True)` or `Masking` layer.
        training: Python boolean, whether to apply dropout. Default: `False`.

    Example:

    >>> inputs = np.random.random((32, 10, 8))
    >>> JordanRNN(4, return_sequences=True)(inputs).shape
    (32, 10, 4)
    >>> keras.layers.Bidirectional(JordanRNN(4))(inputs).shape
    (32, 8)

    Reference: Jordan 1986; Mesnil et al., Interspeech 2013 (see
    `JordanRNNCell`).
    """

    cell_args = _CELL_ARGS

    def __init__(
        self,
        units,
        output_units=None,
        activation="tanh",
        output_activation="tanh",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        output_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        output_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        output_constraint=None,
        bias_constraint=None,
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
        cell = JordanRNNCell(
            units,
            output_units=output_units,
            activation=activation,
            output_activation=output_activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            output_initializer=output_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer,
            output_regularizer=output_regularizer,
            bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint,
            output_constraint=output_constraint,
            bias_constraint=bias_constraint,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            seed=seed,
            dtype=kwargs.get("dtype", None),
            trainable=kwargs.get("trainable", True),
            name="jordan_rnn_cell",
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
