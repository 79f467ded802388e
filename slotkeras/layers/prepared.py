"""Weights laid out once for serving, where inference would lay them out at every call.

Some inference kernels read a layer's weights in another layout: `FusedLSTM` hands
`BlockLSTMV2` its kernel and recurrent kernel as one matrix, and the CRF's marginals
multiply by a block matrix of its exponentiated transitions. Computed in the graph,
that work runs at every call, on the critical path of a served utterance, for the
same values each time. A layer that does such work names it in `prepared_weights()`;
`PreparedWeights` computes every layer's once, from a trained model, and holds the
results as variables (the export saves and restores them with the model's own);
while `scope()` is open, the layers read them through `prepared`.

Outside a scope, in training and anywhere else, the layers compute the values from
their live weights as before. A scope's values are a snapshot: a model trained on
after `PreparedWeights` took it needs a new `PreparedWeights`.
"""

from __future__ import annotations

import contextlib
import contextvars

import keras

# (id(layer), name) -> variable, while a `PreparedWeights.scope()` is open.
_ACTIVE = contextvars.ContextVar("slotkeras_prepared_weights", default=None)


def prepared(layer, name: str, compute):
    """The prepared weight `name` of `layer` in an open scope, else `compute()`."""
    values = _ACTIVE.get()
    value = None if values is None else values.get((id(layer), name))
    return compute() if value is None else value


class _Lookup:
    __slots__ = ("values",)

    def __init__(self, values):
        self.values = values


class PreparedWeights(keras.layers.Layer):
    """The `prepared_weights()` of every layer of `model`, computed now, as
    non-trainable variables.

    Args:
        model: a built Keras model; its layers at any depth are searched.

    Example:
        >>> prepared = PreparedWeights(model)
        >>> with prepared.scope():
        ...     outputs = model(inputs)  # traced: reads the prepared variables
    """

    def __init__(self, model: keras.Model, **kwargs):
        super().__init__(trainable=False, **kwargs)
        values = {}
        # Every layer at any depth, the LSTMs inside `Bidirectional` included, which
        # `model.layers` does not list (Keras 3 has no public walk).
        for layer in model._flatten_layers(include_self=False, recursive=True):
            for name, value in getattr(layer, "prepared_weights", dict)().items():
                variable = self.add_weight(
                    shape=tuple(value.shape),
                    dtype=value.dtype,
                    initializer="zeros",
                    trainable=False,
                    name=f"{layer.name}_{name}",
                )
                variable.assign(value)
                values[(id(layer), name)] = variable
        # Held outside the layer's tracked attributes: keyed by layers, it is no
        # part of what is saved (the variables are, as the layer's weights).
        self._lookup = _Lookup(values)
        self.built = True

    def __len__(self) -> int:
        return len(self._lookup.values)

    @contextlib.contextmanager
    def scope(self):
        """Layers traced or run inside read these values."""
        token = _ACTIVE.set(self._lookup.values)
        try:
            yield self
        finally:
            _ACTIVE.reset(token)
