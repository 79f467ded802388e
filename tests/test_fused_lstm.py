"""FusedLSTM: keras.layers.LSTM with a one-op inference path on CPU.

Every case compares against `keras.layers.LSTM` holding the same weights, which
runs Keras' own loop; the fused path must agree at every step, masked ones
included, and must not be taken while training.

The layer fuses only where no GPU is visible (on a GPU, Keras runs cuDNN), so the
tests of which path runs need a machine without one: on a GPU machine they skip,
and `CUDA_VISIBLE_DEVICES= python -m pytest tests/test_fused_lstm.py` runs them
(as bench/gpu_check.sh does). The comparisons with Keras hold on any machine."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from slotkeras.layers import fused_lstm
from slotkeras.layers.fused_lstm import FUSED_MAX_BATCH, FusedLSTM

UNITS, FEATURES = 6, 5
LENGTHS = [7, 4, 1, 0]


def inputs(lengths=LENGTHS, steps=7, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(len(lengths), steps, FEATURES)).astype("float32")
    mask = np.arange(steps)[None, :] < np.array(lengths)[:, None]
    return x, mask


def twins(**kwargs):
    """A FusedLSTM and a keras LSTM with the same (random, non-trivial) weights."""
    fused = FusedLSTM(UNITS, **kwargs)
    plain = keras.layers.LSTM(UNITS, **kwargs)
    x, _ = inputs()
    fused(x)
    plain(x)
    rng = np.random.default_rng(1)
    for variable in fused.weights:
        variable.assign(rng.normal(scale=0.5, size=variable.shape).astype("float32"))
    plain.set_weights(fused.get_weights())
    return fused, plain


@pytest.fixture
def no_gpu():
    """Skips where a GPU is visible: the layer never takes its fused path there."""
    if fused_lstm._gpu_present():
        pytest.skip(
            "FusedLSTM fuses only where no GPU is visible (Keras runs cuDNN on one); "
            "run with CUDA_VISIBLE_DEVICES= to test the fused path"
        )


def check_same(a, b):
    for got, want in zip(keras.tree.flatten(a), keras.tree.flatten(b), strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("zero_output_for_mask", [False, True])
@pytest.mark.parametrize("in_graph", [False, True])
def test_inference_equals_keras_lstm(go_backwards, zero_output_for_mask, in_graph):
    fused, plain = twins(return_sequences=True, return_state=True, go_backwards=go_backwards)
    fused.zero_output_for_mask = plain.zero_output_for_mask = zero_output_for_mask
    x, mask = inputs()

    def run(layer):
        call = lambda x, m: layer(x, mask=m, training=False)  # noqa: E731
        return (tf.function(call) if in_graph else call)(tf.constant(x), tf.constant(mask))

    check_same(run(fused), run(plain))


def test_eager_inference_does_not_run_the_keras_loop(monkeypatch, no_gpu):
    fused, plain = twins(return_sequences=True, go_backwards=True)
    x, mask = inputs()
    want = plain(x, mask=mask)
    calls = []
    loop = keras.layers.LSTM.inner_loop
    monkeypatch.setattr(
        keras.layers.LSTM, "inner_loop", lambda *a, **k: calls.append(1) or loop(*a, **k)
    )
    check_same(fused(x, mask=mask), want)
    assert calls == []
    fused(x, mask=mask, training=True)
    assert calls == [1]
    # Batches above FUSED_MAX_BATCH take Keras' loop, which is faster there.
    x, mask = inputs(lengths=[7, 6, 5, 4, 3, 2][: FUSED_MAX_BATCH + 1])
    want = plain(x, mask=mask)
    calls.clear()
    check_same(fused(x, mask=mask), want)
    assert calls == [1]


def test_without_mask_and_with_initial_state():
    fused, plain = twins(return_sequences=True, return_state=True)
    x, _ = inputs()
    rng = np.random.default_rng(2)
    state = [rng.normal(size=(len(x), UNITS)).astype("float32") for _ in range(2)]
    check_same(fused(x, initial_state=state), plain(x, initial_state=state))


def test_bidirectional_equals_keras_lstm():
    x, mask = inputs()
    fused = keras.layers.Bidirectional(FusedLSTM(UNITS, return_sequences=True))
    plain = keras.layers.Bidirectional(keras.layers.LSTM(UNITS, return_sequences=True))
    fused(x)
    plain(x)
    rng = np.random.default_rng(3)
    plain.set_weights([rng.normal(scale=0.5, size=w.shape) for w in fused.get_weights()])
    fused.set_weights(plain.get_weights())
    check_same(fused(x, mask=mask), plain(x, mask=mask))


def test_mask_with_holes_falls_back_to_the_loop():
    fused, plain = twins(return_sequences=True)
    x, mask = inputs()
    mask[0, 2] = False  # not padding at the end: BlockLSTM cannot skip it
    check_same(
        tf.function(lambda x, m: fused(x, mask=m))(x, mask),
        plain(x, mask=mask),
    )


def test_training_uses_keras_loop_and_gradients_match():
    fused, plain = twins(return_sequences=True)
    x, mask = inputs()
    grads = []
    for layer in (fused, plain):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(x, mask=mask, training=True) ** 2)
        grads.append(tape.gradient(loss, layer.trainable_weights))
    check_same(*grads)
    assert all(g is not None for g in grads[0])


def count_runs(monkeypatch):
    """Counters of the runs (not the traces) of each side of `inner_loop`'s
    `tf.cond`: a variable incremented inside the branch moves only when the branch
    executes, though the graph holds both."""
    runs = {"fused": tf.Variable(0), "loop": tf.Variable(0)}

    def counting(name, function):
        def counted(*args, **kwargs):
            with tf.control_dependencies([runs[name].assign_add(1)]):
                return tf.nest.map_structure(tf.identity, function(*args, **kwargs))

        return counted

    monkeypatch.setattr(FusedLSTM, "_fused", counting("fused", FusedLSTM._fused))
    monkeypatch.setattr(
        keras.layers.LSTM, "inner_loop", counting("loop", keras.layers.LSTM.inner_loop)
    )
    return runs


def test_graph_runs_the_fused_op_for_small_padded_batches_only(monkeypatch, no_gpu):
    fused, plain = twins(return_sequences=True)
    holes = inputs()[1].copy()
    holes[0, 2] = False
    cases = [
        (inputs(), {"fused": 1, "loop": 0}),
        ((inputs()[0], holes), {"fused": 0, "loop": 1}),
        (inputs(lengths=[7, 6, 5, 4, 3, 2][: FUSED_MAX_BATCH + 1]), {"fused": 0, "loop": 1}),
    ]
    expected = [plain(x, mask=mask) for (x, mask), _ in cases]
    runs = count_runs(monkeypatch)
    spec = (tf.TensorSpec([None, None, FEATURES], tf.float32), tf.TensorSpec([None, None], tf.bool))
    infer = tf.function(lambda x, m: fused(x, mask=m, training=False), input_signature=spec)
    # One graph for all three: which side runs is decided when it runs.
    for ((x, mask), want_runs), want in zip(cases, expected, strict=True):
        for counter in runs.values():
            counter.assign(0)
        check_same(infer(x, mask), want)
        assert {name: int(c.numpy()) for name, c in runs.items()} == want_runs, mask


def test_a_visible_gpu_means_the_keras_loop(monkeypatch):
    """Where Keras would run cuDNN, the layer leaves it to Keras."""
    fused, plain = twins(return_sequences=True)
    x, mask = inputs()
    want = plain(x, mask=mask)
    monkeypatch.setattr(fused_lstm, "_gpu_present", lambda: True)
    runs = count_runs(monkeypatch)
    check_same(fused(x, mask=mask, training=False), want)
    assert {name: int(counter.numpy()) for name, counter in runs.items()} == {
        "fused": 0,
        "loop": 1,
    }


def test_serializes_and_reloads(tmp_path):
    x, mask = inputs()
    inputs_ = keras.Input((None, FEATURES))
    model = keras.Model(
        inputs_, keras.layers.Bidirectional(FusedLSTM(UNITS, return_sequences=True))(inputs_)
    )
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert isinstance(loaded.layers[1].forward_layer, FusedLSTM)
    check_same(loaded(x), model(x))
