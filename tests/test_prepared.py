"""PreparedWeights: weight layouts computed once for serving, read inside its scope.

The layers must give the same results from the prepared variables as from their
live weights, and must really read the prepared ones inside the scope: changing them
changes the output there and nowhere else. That the export carries them, restored
as TensorFlow Serving restores variables, tests/test_serving.py checks: a session
run fails on a variable that its saver does not restore."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from slotkeras.layers.crf import CRF
from slotkeras.layers.fused_lstm import FusedLSTM, _gpu_present
from slotkeras.layers.prepared import PreparedWeights

STEPS, FEATURES, TAGS = 6, 5, 7


@pytest.fixture()
def tagger():
    """A bidirectional FusedLSTM under a CRF, with random non-trivial weights."""
    tokens = keras.Input((STEPS, FEATURES))
    hidden = keras.layers.Bidirectional(FusedLSTM(4, return_sequences=True))(tokens)
    scores = CRF(TAGS)(keras.layers.Dense(TAGS)(hidden))
    model = keras.Model(tokens, scores)
    rng = np.random.default_rng(0)
    for variable in model.weights:
        variable.assign(rng.normal(scale=0.7, size=variable.shape).astype("float32"))
    return model


def outputs(model, x, mask):
    crf = model.layers[-1]
    scores = model(x, training=False)
    tags, marginals = crf.decode_with_marginals(scores, mask)
    return scores.numpy(), tags.numpy(), marginals.numpy()


def inputs():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, STEPS, FEATURES)).astype("float32")
    return x, np.arange(STEPS)[None] < np.array([[STEPS], [3]])


def test_the_prepared_weights_give_the_live_weights_results(tagger):
    prepared = PreparedWeights(tagger)
    assert len(prepared) == 3  # the fused kernel of each direction, the CRF matrix
    assert all(not w.trainable for w in prepared.weights)
    x, mask = inputs()
    live = outputs(tagger, x, mask)
    with prepared.scope():
        served = outputs(tagger, x, mask)
        traced = tf.function(lambda x: tagger(x, training=False))(x)  # traced inside
    np.testing.assert_allclose(served[0], live[0], atol=1e-5)
    np.testing.assert_array_equal(served[1], live[1])
    np.testing.assert_allclose(served[2], live[2], atol=1e-5)
    np.testing.assert_allclose(traced.numpy(), live[0], atol=1e-5)


@pytest.mark.skipif(_gpu_present(), reason="the fused LSTM path runs on CPU only")
def test_inside_the_scope_the_layers_read_the_prepared_variables(tagger):
    prepared = PreparedWeights(tagger)
    x, mask = inputs()
    live = outputs(tagger, x, mask)
    for variable in prepared.weights:
        variable.assign(tf.zeros_like(variable))
    with prepared.scope():
        changed = outputs(tagger, x, mask)
    # A zero LSTM kernel makes every hidden state, and so every score, the bias's
    # own; a zero chain matrix leaves no probability to any tag.
    assert not np.allclose(changed[0], live[0], atol=1e-3)
    np.testing.assert_array_equal(changed[2], 0.0)
    # Outside the scope the layers use their live weights again.
    again = outputs(tagger, x, mask)
    np.testing.assert_allclose(again[0], live[0], atol=1e-6)
    np.testing.assert_allclose(again[2], live[2], atol=1e-6)


def test_a_model_without_such_layers_prepares_nothing():
    tokens = keras.Input((STEPS, FEATURES))
    model = keras.Model(tokens, keras.layers.Dense(3)(tokens))
    prepared = PreparedWeights(model)
    assert len(prepared) == 0
    with prepared.scope():
        model(np.zeros((1, STEPS, FEATURES), "float32"))
