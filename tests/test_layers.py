"""Tests for slotkeras.layers: Jordan RNN and peephole LSTM cells and layers.

Numbers are checked against the lecture's worked examples, step-by-step NumPy
references (float64), Keras's own LSTM, Keras 2's PeepholeLSTMCell and
tf_keras's LSTMCell with peepholes.
"""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from conftest import ROOT

# tf_keras is a test-only reference (the dev extra): imported, never skipped.
from tf_keras.src.layers.rnn import legacy_cells as tf_keras_legacy_cells

from slotkeras.layers import JordanRNN, JordanRNNCell, PeepholeLSTM, PeepholeLSTMCell

F64 = "float64"


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def run_reference(step, x, states, mask=None, go_backwards=False, zero_output_for_mask=False):
    """Runs `step(x_t, states) -> (output, states)` over time like `keras.layers.RNN`.

    Returns (outputs in processing order, last output, final states).
    """
    if go_backwards:
        x = x[:, ::-1]
        mask = None if mask is None else mask[:, ::-1]
    outputs, output = [], None
    for t in range(x.shape[1]):
        new_output, new_states = step(x[:, t], states)
        if output is None:
            output = np.zeros_like(new_output)
        if mask is None:
            output, states = new_output, new_states
            outputs.append(output)
        else:
            m = mask[:, t, None]
            states = [np.where(m, new, old) for new, old in zip(new_states, states, strict=True)]
            output = np.where(m, new_output, output)
            outputs.append(np.where(m, new_output, 0.0) if zero_output_for_mask else output)
    return np.stack(outputs, axis=1), output, states


def jordan_step(
    weights, activation=np.tanh, output_activation=np.tanh, input_mask=1.0, recurrent_mask=1.0
):
    """One step of the formulas; the masks multiply `x(t)` and the fed-back `y(t-1)`."""
    kernel, recurrent_kernel, bias, output_kernel, output_bias = weights

    def step(x_t, states):
        (y_tm1,) = states
        h = activation(
            (x_t * input_mask) @ kernel + (y_tm1 * recurrent_mask) @ recurrent_kernel + bias
        )
        y = output_activation(h @ output_kernel + output_bias)
        return y, [y]

    return step


def peephole_step(weights, activation=np.tanh, input_mask=1.0, recurrent_mask=1.0):
    """One step of the formulas; the masks multiply `x(t)` and `h(t-1)` (not `c`)."""
    kernel, recurrent_kernel, bias, p_i, p_f, p_o = weights

    def step(x_t, states):
        h_tm1, c_tm1 = states
        z = (x_t * input_mask) @ kernel + (h_tm1 * recurrent_mask) @ recurrent_kernel + bias
        z_i, z_f, z_c, z_o = np.split(z, 4, axis=-1)
        i = sigmoid(z_i + p_i * c_tm1)
        f = sigmoid(z_f + p_f * c_tm1)
        c = f * c_tm1 + i * activation(z_c)
        o = sigmoid(z_o + p_o * c)
        h = o * activation(c)
        return h, [h, c]

    return step


def random_weights(layer, seed=0, scale=0.5):
    """Seeded random values for every weight of a built layer, in its order."""
    rng = np.random.default_rng(seed)
    return [scale * rng.standard_normal(w.shape) for w in layer.weights]


def zero_states(batch, sizes):
    return [np.zeros((batch, s)) for s in sizes]


def make_layer(kind, units, **kwargs):
    """The four ways to get one of our recurrent layers, all float64."""
    if kind == "JordanRNN":
        return JordanRNN(units, dtype=F64, **kwargs)
    if kind == "PeepholeLSTM":
        return PeepholeLSTM(units, dtype=F64, **kwargs)
    if kind == "RNN(JordanRNNCell)":
        return keras.layers.RNN(JordanRNNCell(units, dtype=F64), dtype=F64, **kwargs)
    if kind == "RNN(PeepholeLSTMCell)":
        return keras.layers.RNN(PeepholeLSTMCell(units, dtype=F64), dtype=F64, **kwargs)
    raise ValueError(kind)


def reference_step(kind, weights, **masks):
    if "Jordan" in kind:
        return jordan_step(weights, **masks), [weights[3].shape[1]]
    units = weights[1].shape[0]
    return peephole_step(weights, **masks), [units, units]


def assert_equals_reference(outputs, states, step, sizes, x, go_backwards=False):
    """A layer's `return_sequences=True, return_state=True` results equal `step`'s."""
    ref_outputs, _, ref_states = run_reference(
        step, x, zero_states(len(x), sizes), go_backwards=go_backwards
    )
    np.testing.assert_allclose(np.asarray(outputs), ref_outputs, rtol=1e-10, atol=1e-12)
    for state, ref_state in zip(states, ref_states, strict=True):
        np.testing.assert_allclose(np.asarray(state), ref_state, rtol=1e-10, atol=1e-12)


KINDS = ["JordanRNN", "RNN(JordanRNNCell)", "PeepholeLSTM", "RNN(PeepholeLSTMCell)"]


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(42).standard_normal((3, 5, 4))


# --- The lecture's worked examples --------------------------------------------


def test_elman_worked_example_by_hand():
    """Worked example 1: Elman network, all weights 1, linear, no bias."""
    inputs = keras.Input((3, 2))
    hidden = keras.layers.SimpleRNN(
        2,
        activation="linear",
        use_bias=False,
        kernel_initializer="ones",
        recurrent_initializer="ones",
        return_sequences=True,
    )(inputs)
    outputs = keras.layers.Dense(2, use_bias=False, kernel_initializer="ones")(hidden)
    model = keras.Model(inputs, [hidden, outputs])
    h, y = model.predict(np.array([[[1, 1], [1, 1], [2, 2]]], "float32"), verbose=0)
    np.testing.assert_array_equal(h[0], [[2, 2], [6, 6], [16, 16]])
    np.testing.assert_array_equal(y[0], [[4, 4], [12, 12], [32, 32]])
    # Same inputs in another order: other outputs (the memory makes the difference).
    _, y2 = model.predict(np.array([[[2, 2], [1, 1], [1, 1]]], "float32"), verbose=0)
    assert not np.array_equal(y2[0], y[0])


# Worked example 2: gates in the Keras order i, f, c, o; inputs [x1, x2, x3].
LECTURE_KERNEL = np.array(
    [
        [0.0, 0.0, 1.0, 0.0],  # x1 -> cell input z
        [100.0, 100.0, 0.0, 0.0],  # x2 -> input gate z_i, forget gate z_f
        [0.0, 0.0, 0.0, 100.0],  # x3 -> output gate z_o
    ]
)
LECTURE_BIAS = np.array([-10.0, 10.0, 0.0, -10.0])
LECTURE_INPUTS = np.array([[[3, 1, 0], [4, 1, 0], [2, 0, 0], [1, 0, 1], [3, -1, 0]]], F64)
LECTURE_MEMORY = [3, 7, 7, 7, 0]
LECTURE_OUTPUT = [0, 0, 0, 7, 0]


def lecture_lstm_weights(peepholes):
    weights = [LECTURE_KERNEL, np.zeros((1, 4)), LECTURE_BIAS]
    return weights + [np.zeros(1)] * 3 if peepholes else weights


def test_lstm_worked_example_through_peephole_cell():
    """Worked example 2, stepping PeepholeLSTMCell (zero peepholes, g and h linear)."""
    cell = PeepholeLSTMCell(1, activation="linear", dtype=F64)
    cell.build((1, 3))
    cell.set_weights(lecture_lstm_weights(peepholes=True))
    states = [np.zeros((1, 1)), np.zeros((1, 1))]
    memory, output = [], []
    for t in range(5):
        y, states = cell(LECTURE_INPUTS[:, t], states)
        output.append(float(y[0, 0]))
        memory.append(float(states[1][0, 0]))
    np.testing.assert_allclose(memory, LECTURE_MEMORY, atol=1e-2)
    np.testing.assert_allclose(output, LECTURE_OUTPUT, atol=1e-2)


@pytest.mark.parametrize("layer_class", [keras.layers.LSTM, PeepholeLSTM])
def test_lstm_worked_example_through_layers(layer_class):
    """Worked example 2 through keras.layers.LSTM and PeepholeLSTM; c via return_state."""
    layer = layer_class(1, activation="linear", return_sequences=True, return_state=True, dtype=F64)
    layer(LECTURE_INPUTS[:, :1])
    layer.set_weights(lecture_lstm_weights(peepholes=layer_class is PeepholeLSTM))
    outputs = np.asarray(layer(LECTURE_INPUTS)[0])[0, :, 0]
    # The final carry state of each prefix is the memory after that step.
    memory = [float(layer(LECTURE_INPUTS[:, : t + 1])[2][0, 0]) for t in range(5)]
    np.testing.assert_allclose(memory, LECTURE_MEMORY, atol=1e-2)
    np.testing.assert_allclose(outputs, LECTURE_OUTPUT, atol=1e-2)


# --- Against step-by-step NumPy references ----------------------------------------


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("kind", KINDS)
def test_matches_numpy_reference(kind, go_backwards, x):
    layer = make_layer(kind, 3, return_sequences=True, return_state=True, go_backwards=go_backwards)
    layer(x)
    weights = random_weights(layer)
    layer.set_weights(weights)
    outputs, *states = layer(x)
    step, sizes = reference_step(kind, weights)
    assert_equals_reference(outputs, states, step, sizes, x, go_backwards)


def test_jordan_softmax_label_feedback_matches_numpy(x):
    """Mesnil et al.'s form: the fed-back memory is the label distribution."""
    layer = JordanRNN(6, output_units=4, output_activation="softmax", return_sequences=True)
    layer.build(x.shape)
    assert layer.cell.state_size == layer.cell.output_size == 4
    weights = random_weights(layer, seed=3)
    layer.set_weights(weights)

    def softmax(z):
        e = np.exp(z - z.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    step = jordan_step(weights, output_activation=softmax)
    ref, _, _ = run_reference(step, x, zero_states(len(x), [4]))
    out = np.asarray(layer(x.astype("float32")))
    np.testing.assert_allclose(out, ref, atol=1e-5)
    np.testing.assert_allclose(out.sum(-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_bidirectional_matches_numpy_reference(kind, x):
    """Bidirectional rebuilds the backward layer from get_config (go_backwards=True)."""
    bi = keras.layers.Bidirectional(make_layer(kind, 3, return_sequences=True), dtype=F64)
    bi(x)
    assert bi.backward_layer.go_backwards and not bi.forward_layer.go_backwards
    assert type(bi.backward_layer) is type(bi.forward_layer)
    forward_weights = random_weights(bi.forward_layer, seed=1)
    backward_weights = random_weights(bi.backward_layer, seed=2)
    bi.forward_layer.set_weights(forward_weights)
    bi.backward_layer.set_weights(backward_weights)
    out = np.asarray(bi(x))
    step, sizes = reference_step(kind, forward_weights)
    fwd, _, _ = run_reference(step, x, zero_states(len(x), sizes))
    step, sizes = reference_step(kind, backward_weights)
    bwd, _, _ = run_reference(step, x, zero_states(len(x), sizes), go_backwards=True)
    np.testing.assert_allclose(out, np.concatenate([fwd, bwd[:, ::-1]], -1), atol=1e-12)


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize(
    "layer_class, cell_class", [(JordanRNN, JordanRNNCell), (PeepholeLSTM, PeepholeLSTMCell)]
)
def test_layer_equals_rnn_of_cell_with_mask(layer_class, cell_class, go_backwards, x):
    """The fast layer gives the numbers of keras.layers.RNN(cell), masks included."""
    kwargs = dict(return_sequences=True, return_state=True, go_backwards=go_backwards)
    fast = layer_class(4, dtype=F64, seed=7, **kwargs)
    slow = keras.layers.RNN(cell_class(4, dtype=F64, seed=7), dtype=F64, **kwargs)
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], bool)
    fast_out = fast(x, mask=mask)
    slow_out = slow(x, mask=mask)
    # Same seed, same initial weights.
    for a, b in zip(fast.get_weights(), slow.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(fast_out, slow_out, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-12)
    step, sizes = reference_step(layer_class.__name__, fast.get_weights())
    ref, _, _ = run_reference(
        step, x, zero_states(len(x), sizes), mask=mask, go_backwards=go_backwards
    )
    np.testing.assert_allclose(np.asarray(fast_out[0]), ref, atol=1e-12)


def test_stacked_cells_match_stacked_layers(x):
    stacked = keras.layers.RNN(
        [JordanRNNCell(3, dtype=F64), PeepholeLSTMCell(2, dtype=F64)],
        return_sequences=True,
        dtype=F64,
    )
    stacked(x)
    weights = random_weights(stacked, seed=5)
    stacked.set_weights(weights)
    first = JordanRNN(3, return_sequences=True, dtype=F64)
    second = PeepholeLSTM(2, return_sequences=True, dtype=F64)
    second(first(x))
    first.set_weights(weights[:5])
    second.set_weights(weights[5:])
    np.testing.assert_allclose(np.asarray(stacked(x)), np.asarray(second(first(x))), atol=1e-12)


# --- Against Keras's LSTM and tf_keras's PeepholeLSTMCell -------------------------------


def test_zero_peepholes_equal_keras_lstm(x):
    peephole = keras.layers.RNN(
        PeepholeLSTMCell(3, peephole_initializer="zeros", dtype=F64),
        return_sequences=True,
        dtype=F64,
    )
    fast = PeepholeLSTM(3, peephole_initializer="zeros", return_sequences=True, dtype=F64)
    lstm = keras.layers.RNN(keras.layers.LSTMCell(3, dtype=F64), return_sequences=True, dtype=F64)
    lstm_layer = keras.layers.LSTM(3, return_sequences=True, dtype=F64)
    for layer in (peephole, fast, lstm, lstm_layer):
        layer(x)
    weights = random_weights(lstm, seed=11)  # kernel, recurrent_kernel, bias
    lstm.set_weights(weights)
    lstm_layer.set_weights(weights)
    peephole.set_weights(weights + [np.zeros(3)] * 3)
    fast.set_weights(weights + [np.zeros(3)] * 3)
    expected = np.asarray(lstm(x))
    np.testing.assert_allclose(np.asarray(lstm_layer(x)), expected, atol=1e-12)
    np.testing.assert_allclose(np.asarray(peephole(x)), expected, atol=1e-12)
    np.testing.assert_allclose(np.asarray(fast(x)), expected, atol=1e-12)
    # Nonzero peepholes do change the result.
    fast.set_weights(weights + [np.full(3, 0.5)] * 3)
    assert not np.allclose(np.asarray(fast(x)), expected, atol=1e-3)


def our_peephole_layers():
    return [
        PeepholeLSTM(3, return_sequences=True, return_state=True, dtype=F64),
        keras.layers.RNN(
            PeepholeLSTMCell(3, dtype=F64), return_sequences=True, return_state=True, dtype=F64
        ),
    ]


PEEPHOLE_WEIGHT_NAMES = [
    "kernel",
    "recurrent_kernel",
    "bias",
    "input_gate_peephole_weights",
    "forget_gate_peephole_weights",
    "output_gate_peephole_weights",
]


@pytest.mark.filterwarnings("ignore:`tf.keras.experimental.PeepholeLSTMCell` is deprecated")
def test_equals_keras2_experimental_peephole_lstm_cell(x):
    """Same (nonzero) weights as Keras 2's `tf.keras.experimental.PeepholeLSTMCell`.

    tf_keras 2.21 no longer exports it; TensorFlow still ships the Keras 2
    original in its legacy `tensorflow.python.keras` package.
    """
    from tensorflow.python.keras.layers import recurrent as keras2_recurrent

    reference = keras2_recurrent.RNN(
        # Its default gate activation was Keras 2's "hard_sigmoid".
        keras2_recurrent.PeepholeLSTMCell(3, recurrent_activation="sigmoid", dtype=F64),
        return_sequences=True,
        return_state=True,
        dtype=F64,
    )
    reference(x)
    names = [w.name.split("/")[-1].split(":")[0] for w in reference.weights]
    assert names == PEEPHOLE_WEIGHT_NAMES
    for ours in our_peephole_layers():
        ours(x)
        assert [w.name for w in ours.weights] == PEEPHOLE_WEIGHT_NAMES
        weights = random_weights(ours, seed=13)
        reference.set_weights(weights)
        ours.set_weights(weights)
        for a, b in zip(ours(x), reference(x), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-12)


@pytest.mark.filterwarnings("ignore:`tf.nn.rnn_cell.LSTMCell` is deprecated")
def test_equals_tf_keras_lstm_cell_with_peepholes(x):
    """Same (nonzero) weights as tf_keras's LSTMCell(use_peepholes=True) (Sak et al. 2014).

    That cell fuses [x, h] @ kernel with the gates in the order i, c, f, o and
    names its peepholes w_i_diag, w_f_diag, w_o_diag.
    """
    reference = tf_keras_legacy_cells.LSTMCell(3, use_peepholes=True, forget_bias=0.0, dtype=F64)
    reference.build((None, x.shape[-1]))
    for ours in our_peephole_layers():
        ours(x)
        kernel, recurrent_kernel, bias, p_i, p_f, p_o = weights = random_weights(ours, seed=17)
        ours.set_weights(weights)

        def to_icfo(w):
            i, f, c, o = np.split(w, 4, axis=-1)
            return np.concatenate([i, c, f, o], axis=-1)

        reference_weights = {
            "kernel": to_icfo(np.concatenate([kernel, recurrent_kernel])),
            "bias": to_icfo(bias),
            "w_i_diag": p_i,
            "w_f_diag": p_f,
            "w_o_diag": p_o,
        }
        reference.set_weights(
            [reference_weights[w.name.split("/")[-1].split(":")[0]] for w in reference.weights]
        )
        state = (np.zeros((len(x), 3)), np.zeros((len(x), 3)))  # (c, h)
        outputs = []
        for t in range(x.shape[1]):
            h, state = reference(x[:, t], state)
            outputs.append(np.asarray(h))
        out, h_last, c_last = ours(x)
        np.testing.assert_allclose(np.asarray(out), np.stack(outputs, 1), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(np.asarray(c_last), np.asarray(state[0]), atol=1e-12)
        np.testing.assert_allclose(np.asarray(h_last), np.asarray(state[1]), atol=1e-12)


# --- Masking ------------------------------------------------------------------------


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("kind", KINDS)
def test_padded_in_masked_batch_equals_alone(kind, go_backwards, x):
    """A sequence gives the same outputs alone and right-padded in a masked batch."""
    layer = make_layer(kind, 3, return_sequences=True, go_backwards=go_backwards)
    length = 3
    alone = x[:1, :length]
    batch = x.copy()
    batch[0, length:] = 99.0  # Padding garbage must not leak in.
    mask = np.ones(batch.shape[:2], bool)
    mask[0, length:] = False
    out_alone = np.asarray(layer(alone))[0]
    out_batch = np.asarray(layer(batch, mask=mask))[0]
    # go_backwards returns the reversed sequence: the padding comes first.
    valid = out_batch[-length:] if go_backwards else out_batch[:length]
    np.testing.assert_allclose(valid, out_alone, atol=1e-12)
    layer.return_sequences = False
    np.testing.assert_allclose(
        np.asarray(layer(batch, mask=mask))[0], np.asarray(layer(alone))[0], atol=1e-12
    )


@pytest.mark.parametrize("kind", ["JordanRNN", "PeepholeLSTM"])
def test_padded_equals_alone_in_bidirectional_with_masking_layer(kind, x):
    bi = keras.layers.Bidirectional(make_layer(kind, 3, return_sequences=True), dtype=F64)
    model = keras.Sequential(
        [keras.Input((None, 4), dtype=F64), keras.layers.Masking(0.0, dtype=F64), bi]
    )
    length = 2
    batch = x.copy()
    batch[0, length:] = 0.0
    out_alone = model(x[:1, :length])
    out_batch = model(batch)
    np.testing.assert_allclose(np.asarray(out_batch)[0, :length], out_alone[0], atol=1e-12)
    np.testing.assert_array_equal(np.asarray(out_batch)[0, length:], 0.0)


# --- Dropout -----------------------------------------------------------------------

DROPOUT = dict(dropout=0.4, recurrent_dropout=0.3)


def make_dropout_layer(kind, units, dtype=F64, **kwargs):
    """`make_layer`'s kinds, with `dropout`, `recurrent_dropout` and `seed` given to
    whichever holds them (the cell, for `keras.layers.RNN`)."""
    names = ("dropout", "recurrent_dropout", "seed")
    if kind.startswith("RNN("):
        cell_class = JordanRNNCell if "Jordan" in kind else PeepholeLSTMCell
        cell_kwargs = {name: kwargs.pop(name) for name in names if name in kwargs}
        return keras.layers.RNN(
            cell_class(units, dtype=dtype, **cell_kwargs), dtype=dtype, **kwargs
        )
    layer_class = JordanRNN if "Jordan" in kind else PeepholeLSTM
    return layer_class(units, dtype=dtype, **kwargs)


def twin_without_dropout(layer, kind, x, **kwargs):
    """A layer of `kind` without dropout and with `layer`'s (random) weights."""
    plain = make_dropout_layer(kind, layer.cell.units, **kwargs)
    plain.build(x.shape)
    layer.build(x.shape)
    plain.set_weights(random_weights(plain))
    layer.set_weights(plain.get_weights())
    return plain


@pytest.mark.parametrize("kind", KINDS)
def test_dropout_changes_outputs_only_in_training(kind, x):
    layer = make_dropout_layer(kind, 3, return_sequences=True, seed=7, **DROPOUT)
    plain = twin_without_dropout(layer, kind, x, return_sequences=True)
    want = np.asarray(plain(x, training=False))
    np.testing.assert_array_equal(np.asarray(plain(x, training=True)), want)
    np.testing.assert_array_equal(np.asarray(layer(x)), want)
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), want)
    first = np.asarray(layer(x, training=True))
    second = np.asarray(layer(x, training=True))
    assert not np.allclose(first, want)
    # New masks for every call: each batch of sequences draws its own.
    assert not np.allclose(first, second)


@pytest.mark.parametrize("kind", ["JordanRNN", "PeepholeLSTM"])
def test_dropout_inside_bidirectional(kind, x):
    """Keras rebuilds the backward layer from the config: it drops out too."""
    bi = keras.layers.Bidirectional(
        make_dropout_layer(kind, 3, return_sequences=True, seed=7, **DROPOUT), dtype=F64
    )
    plain = keras.layers.Bidirectional(
        make_dropout_layer(kind, 3, return_sequences=True), dtype=F64
    )
    bi.build(x.shape)
    plain.build(x.shape)
    plain.set_weights(random_weights(plain))
    bi.set_weights(plain.get_weights())
    assert bi.backward_layer.dropout == DROPOUT["dropout"]
    want = np.asarray(plain(x))
    np.testing.assert_array_equal(np.asarray(bi(x, training=False)), want)
    dropped = np.asarray(bi(x, training=True))
    for half in (slice(0, 3), slice(3, 6)):  # forward, backward
        assert not np.allclose(dropped[..., half], want[..., half])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("go_backwards", [False, True])
def test_dropout_masks_are_the_same_at_every_step(kind, go_backwards, x, monkeypatch):
    """The layer in training equals the NumPy formulas with the masks it drew held
    fixed over the sequence; a mask drawn anew at any step would not."""
    layer = make_dropout_layer(
        kind,
        3,
        return_sequences=True,
        return_state=True,
        go_backwards=go_backwards,
        seed=7,
        **DROPOUT,
    )
    layer.build(x.shape)
    weights = random_weights(layer)
    layer.set_weights(weights)
    cell = layer.cell
    drawn = {}

    def recording(name, method):
        def record(tensor):
            mask = method(tensor)
            drawn.setdefault(name, []).append(np.asarray(mask))
            return mask

        return record

    for name in ("get_dropout_mask", "get_recurrent_dropout_mask"):
        monkeypatch.setattr(cell, name, recording(name, getattr(cell, name)))
    outputs, *states = layer(x, training=True)
    masks = []
    for name, rate in (("get_dropout_mask", 0.4), ("get_recurrent_dropout_mask", 0.3)):
        first = drawn[name][0]
        for mask in drawn[name][1:]:
            np.testing.assert_array_equal(mask, first)
        # Zeros and 1 / (1 - rate), both present.
        np.testing.assert_allclose(np.unique(first), [0.0, 1.0 / (1.0 - rate)])
        masks.append(first)
    assert masks[0].shape == x[:, 0].shape
    input_mask, recurrent_mask = masks
    step, sizes = reference_step(
        kind, weights, input_mask=input_mask, recurrent_mask=recurrent_mask
    )
    assert_equals_reference(outputs, states, step, sizes, x, go_backwards)


def test_dropout_masks_follow_the_seed(x):
    for kind in ("JordanRNN", "PeepholeLSTM"):
        outputs = []
        for seed in (1, 1, 2):
            layer = make_dropout_layer(kind, 3, return_sequences=True, seed=seed, **DROPOUT)
            layer.build(x.shape)
            layer.set_weights(random_weights(layer))  # the same weights for all three
            outputs.append(np.asarray(layer(x, training=True)))
        np.testing.assert_array_equal(outputs[0], outputs[1])
        assert not np.allclose(outputs[0], outputs[2])


def graph_op_types(function, *args):
    """The op types of `function`'s graph, those of its loop bodies included."""
    graph = function.get_concrete_function(*args).graph
    types = {op.type for op in graph.get_operations()}
    for nested in graph._functions.values():
        types |= {node.op for node in nested.definition.node_def}
    return types


@pytest.mark.parametrize("kind", KINDS)
def test_no_dropout_draws_nothing_in_training(kind, x):
    """Without dropout, a training call runs the same graph as before dropout
    existed: no random op, no mask."""
    import tensorflow as tf

    spec = tf.TensorSpec(x.shape, tf.float64)
    for kwargs, random in (({}, False), (DROPOUT, True)):
        layer = make_dropout_layer(kind, 3, return_sequences=True, **kwargs)
        types = graph_op_types(tf.function(lambda s, layer=layer: layer(s, training=True)), spec)
        assert any("Random" in t for t in types) is random, (kwargs, sorted(types))


@pytest.mark.parametrize("cls", [JordanRNNCell, PeepholeLSTMCell, JordanRNN, PeepholeLSTM])
@pytest.mark.parametrize("name", ["dropout", "recurrent_dropout"])
@pytest.mark.parametrize("value", [-0.1, 1.0, "0.5", True])
def test_invalid_dropout_raises_keras_style_error(cls, name, value):
    with pytest.raises(ValueError, match=rf"argument `{name}`, expected a float in \[0, 1\), got"):
        cls(2, **{name: value})


def test_invalid_dropout_message_echoes_value():
    with pytest.raises(ValueError) as info:
        PeepholeLSTM(2, recurrent_dropout=1.5)
    assert str(info.value) == (
        "Received an invalid value for argument `recurrent_dropout`, "
        "expected a float in [0, 1), got 1.5."
    )
    assert JordanRNN(2, dropout=0).dropout == 0.0


@pytest.fixture
def mixed_float16():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


@pytest.mark.parametrize("kind", KINDS)
def test_dropout_under_mixed_precision(kind, x, mixed_float16):
    import tensorflow as tf

    x = x.astype("float32")
    layer = make_dropout_layer(kind, 3, dtype=None, return_sequences=True, seed=7, **DROPOUT)
    plain = twin_without_dropout(layer, kind, x, dtype="float32", return_sequences=True)
    assert layer.compute_dtype == layer.cell.compute_dtype == "float16"
    assert {w.dtype for w in layer.weights} == {"float32"}
    inference = layer(x, training=False)
    assert inference.dtype == "float16"
    np.testing.assert_allclose(np.asarray(inference, "float32"), plain(x), atol=1e-2)
    with tf.GradientTape() as tape:
        training = layer(x, training=True)
        loss = tf.reduce_sum(tf.cast(training, "float32") ** 2)
    assert training.dtype == "float16"
    assert not np.allclose(np.asarray(training, "float32"), np.asarray(inference, "float32"))
    grads = tape.gradient(loss, layer.trainable_weights)
    for weight, grad in zip(layer.trainable_weights, grads, strict=True):
        assert grad.dtype == "float32" and np.all(np.isfinite(grad)), weight.name


# --- Config, serialization, weights ----------------------------------------------------


CONFIG_CASES = [
    (
        JordanRNNCell,
        dict(
            units=4,
            output_units=3,
            output_activation="softmax",
            use_bias=False,
            output_initializer=keras.initializers.Constant(0.25),
            output_regularizer=keras.regularizers.L2(0.03),
            dropout=0.25,
            recurrent_dropout=0.5,
            seed=5,
        ),
    ),
    (
        PeepholeLSTMCell,
        dict(
            units=4,
            activation="linear",
            peephole_initializer=keras.initializers.Constant(1.5),
            unit_forget_bias=False,
            recurrent_dropout=0.125,
        ),
    ),
    (
        JordanRNN,
        dict(units=4, output_units=2, go_backwards=True, return_state=True, dropout=0.5, seed=3),
    ),
    (
        PeepholeLSTM,
        dict(
            units=4,
            peephole_regularizer=keras.regularizers.L1(0.02),
            peephole_constraint=keras.constraints.NonNeg(),
            return_sequences=True,
            unroll=True,
            dropout=0.1,
            recurrent_dropout=0.2,
            seed=9,
        ),
    ),
]

KERAS_OBJECTS = (
    keras.initializers.Initializer,
    keras.regularizers.Regularizer,
    keras.constraints.Constraint,
)


def assert_entry_is_argument(obj, config, name, argument):
    """`config[name]` and `obj.<name>` say what the constructor was given."""
    entry, attribute = config[name], getattr(obj, name)
    if isinstance(argument, KERAS_OBJECTS):
        assert (entry["class_name"], entry["config"]) == (
            type(argument).__name__,
            argument.get_config(),
        ), name
        assert type(attribute) is type(argument), name
        assert attribute.get_config() == argument.get_config(), name
    elif isinstance(argument, str):  # an activation's name
        assert entry == argument, name
        assert attribute is keras.activations.get(argument), name
    else:
        assert entry == argument and type(entry) is type(argument), name
        assert attribute == argument, name


@pytest.mark.parametrize("cls, kwargs", CONFIG_CASES, ids=lambda c: getattr(c, "__name__", ""))
def test_get_config_round_trip(cls, kwargs):
    obj = cls(**kwargs)
    config = obj.get_config()
    for name, argument in kwargs.items():
        assert_entry_is_argument(obj, config, name, argument)
    clone = cls.from_config(config)
    for name, argument in kwargs.items():
        assert_entry_is_argument(clone, clone.get_config(), name, argument)
    # Through Keras's registry, as saving does.
    serialized = keras.saving.serialize_keras_object(obj)
    assert serialized["registered_name"] == f"slotkeras>{cls.__name__}"
    revived = keras.saving.deserialize_keras_object(serialized)
    assert type(revived) is cls
    for name, argument in kwargs.items():
        assert_entry_is_argument(revived, revived.get_config(), name, argument)


def test_every_init_argument_is_attribute_and_config_entry():
    import inspect

    for cls in (JordanRNNCell, PeepholeLSTMCell, JordanRNN, PeepholeLSTM):
        obj = cls(2)
        config = obj.get_config()
        for name in inspect.signature(cls.__init__).parameters:
            if name in ("self", "kwargs"):
                continue
            assert hasattr(obj, name), (cls.__name__, name)
            assert name in config, (cls.__name__, name)
    assert JordanRNNCell(3).output_units == 3
    assert JordanRNN(3, output_units=2).output_units == 2


@pytest.mark.parametrize("cls", [JordanRNNCell, PeepholeLSTMCell, JordanRNN, PeepholeLSTM])
@pytest.mark.parametrize("units", [-3, 0, 2.5, "3", True, None])
def test_invalid_units_raise_keras_style_error(cls, units):
    with pytest.raises(ValueError, match="argument `units`, expected a positive integer, got"):
        cls(units)


def test_invalid_units_message_echoes_value():
    with pytest.raises(ValueError) as info:
        JordanRNNCell(-3)
    assert str(info.value) == (
        "Received an invalid value for argument `units`, expected a positive integer, got -3."
    )
    with pytest.raises(ValueError, match="argument `output_units`.*got 0"):
        JordanRNN(3, output_units=0)


def test_seed_makes_initial_weights_reproducible():
    def weights(layer):
        layer.build((None, 5, 4))
        return layer.get_weights()

    for cls in (JordanRNN, PeepholeLSTM):
        same = zip(weights(cls(3, seed=1)), weights(cls(3, seed=1)), strict=True)
        assert all(np.array_equal(a, b) for a, b in same)
        other = zip(weights(cls(3, seed=1)), weights(cls(3, seed=2)), strict=True)
        assert not all(np.array_equal(a, b) for a, b in other)


def count_params(layer, input_dim=4):
    layer.build((None, 5, input_dim))
    return layer.count_params()


def test_weight_counts():
    n, u, o = 4, 5, 3
    assert count_params(JordanRNN(u)) == n * u + u * u + u + u * u + u
    assert count_params(JordanRNN(u, output_units=o)) == n * u + o * u + u + u * o + o
    assert count_params(JordanRNN(u, output_units=o, use_bias=False)) == n * u + o * u + u * o
    assert count_params(PeepholeLSTM(u)) == 4 * (n * u + u * u + u) + 3 * u
    assert count_params(PeepholeLSTM(u, use_bias=False)) == 4 * (n * u + u * u) + 3 * u
    cell = PeepholeLSTMCell(u)
    cell.build((None, n))
    assert [tuple(w.shape) for w in cell.weights] == [(n, 4 * u), (u, 4 * u), (4 * u,)] + [(u,)] * 3
    jordan = JordanRNNCell(u, output_units=o)
    jordan.build((None, n))
    assert {w.name: tuple(w.shape) for w in jordan.weights} == {
        "kernel": (n, u),
        "recurrent_kernel": (o, u),
        "bias": (u,),
        "output_kernel": (u, o),
        "output_bias": (o,),
    }


def test_lstm_has_four_times_the_weights_of_simple_rnn():
    """The lecture's remark: an LSTM layer has 4x the parameters of a plain one."""
    simple = count_params(keras.layers.SimpleRNN(5))
    assert count_params(keras.layers.LSTM(5)) == 4 * simple
    assert count_params(PeepholeLSTM(5)) == 4 * simple + 3 * 5


def test_unit_forget_bias_initializes_forget_gate_to_one():
    cell = PeepholeLSTMCell(3)
    cell.build((None, 2))
    np.testing.assert_array_equal(np.asarray(cell.bias), [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])


def test_gradients_reach_every_weight(x):
    import tensorflow as tf

    for layer in (JordanRNN(3, return_sequences=True), PeepholeLSTM(3, return_sequences=True)):
        layer.build(x.shape)
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(x.astype("float32")) ** 2)
        grads = tape.gradient(loss, layer.trainable_weights)
        assert len(grads) == len(layer.trainable_weights)
        for weight, grad in zip(layer.trainable_weights, grads, strict=True):
            assert grad is not None and np.any(np.asarray(grad) != 0), weight.name


LOAD_SCRIPT = textwrap.dedent(
    """
    import sys
    import keras
    import numpy as np
    import slotkeras.layers

    x = np.load("x.npy")
    for name in sys.argv[1:]:
        model = keras.saving.load_model(name + ".keras")
        kinds = {type(layer).__name__ for layer in model._flatten_layers()}
        kinds |= {type(getattr(layer, "cell", None)).__name__ for layer in model._flatten_layers()}
        np.testing.assert_array_equal(model.predict(x, verbose=0), np.load(name + ".npy"))
        print(name, "OK", sorted(k for k in kinds if "Jordan" in k or "Peephole" in k))
    """
)


def test_save_and_load_keras_format_in_fresh_process(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 6, 4)).astype("float32")
    x[1, 4:] = 0.0  # Right padding, masked by the Masking layer.

    def build(recurrent):
        inputs = keras.Input((None, 4))
        h = keras.layers.Masking(0.0)(inputs)
        for layer in recurrent:
            h = layer(h)
        return keras.Model(inputs, h)

    models = {
        "jordan": build(
            [
                JordanRNN(5, return_sequences=True),
                keras.layers.Bidirectional(
                    JordanRNN(3, return_sequences=True, dropout=0.2, recurrent_dropout=0.1, seed=4)
                ),
                keras.layers.RNN(
                    JordanRNNCell(4, output_units=3, output_activation="softmax"),
                    return_sequences=True,
                ),
            ]
        ),
        "peephole": build(
            [
                PeepholeLSTM(5, return_sequences=True, go_backwards=True),
                keras.layers.Bidirectional(PeepholeLSTM(3, return_sequences=True)),
                keras.layers.RNN(PeepholeLSTMCell(2, dropout=0.3, recurrent_dropout=0.2)),
            ]
        ),
    }
    np.save(tmp_path / "x.npy", x)
    for name, model in models.items():
        model.save(tmp_path / f"{name}.keras")
        np.save(tmp_path / f"{name}.npy", model.predict(x, verbose=0))
    (tmp_path / "load.py").write_text(LOAD_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "load.py", *models],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "jordan OK ['JordanRNN', 'JordanRNNCell']" in result.stdout
    assert "peephole OK ['PeepholeLSTM', 'PeepholeLSTMCell']" in result.stdout


def test_hashed_word_embedding_is_the_mean_of_present_trigram_rows():
    import tensorflow as tf

    from slotkeras.layers.hashed_word_embedding import HashedWordEmbedding

    layer = HashedWordEmbedding(num_buckets=9, output_dim=3)
    ids = np.array([[[3, 7, 0, 0], [0, 0, 0, 0], [5, 5, 9, 1]]], "int32")
    layer.build(ids.shape)
    table = np.random.default_rng(0).normal(size=(10, 3)).astype("float32")
    table[0] = [50.0, -70.0, 90.0]  # row 0 ("no trigram") must never show
    layer.embeddings.assign(table)
    expected = np.stack(
        [
            (table[3] + table[7]) / 2,
            np.zeros(3),
            (2 * table[5] + table[9] + table[1]) / 4,
        ]
    )[None]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(ids)), expected, atol=1e-5)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(layer.compute_mask(ids)), [[True, False, True]]
    )
    # XLA compiles it (the gathered trigrams have a data-dependent count).
    compiled = tf.function(lambda x: layer(x), jit_compile=True)(tf.constant(ids))
    np.testing.assert_allclose(compiled.numpy(), expected, atol=1e-5)
    # Row 0 gets no gradient; each present row gets 1/count per occurrence.
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(layer(ids))
    grad = tf.convert_to_tensor(tape.gradient(total, layer.embeddings)).numpy()
    np.testing.assert_allclose(grad[0], 0.0, atol=1e-5)
    np.testing.assert_allclose(grad[3], 0.5)
    np.testing.assert_allclose(grad[5], 0.5)
    np.testing.assert_allclose(grad[9], 0.25)
    np.testing.assert_allclose(grad[2], 0.0)
