"""The recurrent-layer machinery shared by `JordanRNN` and `PeepholeLSTM`."""

import keras
from keras import ops, regularizers
from keras.src import backend as keras_backend  # `rnn` is not in the public API.

# Not in the public API either. The cells here derive from it, as Keras' own do:
# `keras.layers.RNN` draws the dropout masks of the cells that are instances of it
# once per call, before its loop (so every step gets the same ones), and clears them
# after.
from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell  # noqa: F401


def _seeded(initializer, seed):
    """Returns `initializer` re-seeded with `seed` if it is random and unseeded."""
    if seed is None:
        return initializer
    config = initializer.get_config()
    if "seed" not in config or config["seed"] is not None:
        return initializer
    return initializer.__class__.from_config({**config, "seed": seed})


class ProjectedRNN(keras.layers.RNN):
    """A `keras.layers.RNN` whose cell splits its step in two: the input projection
    of every time step, computed in one matmul before the loop
    (`cell.project_inputs`), and the recurrent part inside it
    (`cell.recurrent_step` with `cell.recurrent_weights()` read once).

    In training, the cell's input dropout mask (the same at every step) multiplies the
    whole sequence before that matmul, and its recurrent dropout mask goes to every
    step; without dropout the loop is the same as with none configured.

    Subclasses build their cell from flat arguments and name them in `cell_args`;
    `get_config` is flat (the cell's arguments, not a nested cell), which is what
    `keras.layers.Bidirectional` needs to rebuild the backward layer.
    """

    cell_args: tuple = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # Cell arguments read through the layer (`layer.units`, ...), like the
        # properties of `keras.layers.LSTM`.
        for name in cls.cell_args:
            setattr(
                cls,
                name,
                property(lambda self, n=name: getattr(self.cell, n), doc=f"The cell's `{name}`."),
            )

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        cell = self.cell
        if training and cell.dropout > 0:
            # `keras.layers.RNN.call` drew the mask from the first step before the
            # loop; one mask for every step makes the projection of the dropped
            # inputs that of the whole dropped sequence.
            input_mask = cell.get_dropout_mask(sequences[:, 0, :])
            sequences = ops.multiply(sequences, ops.expand_dims(input_mask, 1))
        recurrent_mask = None
        if training and cell.recurrent_dropout > 0:
            recurrent_mask = cell.get_recurrent_dropout_mask(initial_state[0])
        projected = cell.project_inputs(sequences)
        weights = tuple(
            None if w is None else ops.convert_to_tensor(w) for w in cell.recurrent_weights()
        )

        def step(projected_inputs, states):
            return cell.recurrent_step(projected_inputs, states, weights, recurrent_mask)

        return keras_backend.rnn(
            step,
            projected,
            list(initial_state),
            go_backwards=self.go_backwards,
            mask=mask,
            unroll=self.unroll,
            input_length=sequences.shape[1],
            zero_output_for_mask=self.zero_output_for_mask,
            return_all_outputs=self.return_sequences,
        )

    def call(self, sequences, initial_state=None, mask=None, training=False):
        return super().call(sequences, mask=mask, training=training, initial_state=initial_state)

    def get_config(self):
        cell_config = self.cell.get_config()
        config = {name: cell_config[name] for name in self.cell_args}
        config["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
        base_config = super().get_config()
        del base_config["cell"]
        return {**base_config, **config}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
