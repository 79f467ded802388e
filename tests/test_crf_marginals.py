"""CRF marginals (forward-backward) against brute-force enumeration of all paths."""

import itertools

import numpy as np
import pytest
import tensorflow as tf
from test_crf import _brute_force as brute_force  # the best path, by enumeration

from slotkeras.decoding import _force_outside
from slotkeras.layers.crf import CRF, PRUNE_CANDIDATES, SMALL_BATCH


def brute_force_marginals(emissions, mask, transitions, start, end):
    batch, time, tags = emissions.shape
    out = np.zeros((batch, time, tags))
    for b in range(batch):
        steps = np.flatnonzero(mask[b])
        if len(steps) == 0:
            continue
        total = 0.0
        for path in itertools.product(range(tags), repeat=len(steps)):
            score = start[path[0]] + end[path[-1]]
            score += sum(emissions[b, t, y] for t, y in zip(steps, path))
            score += sum(transitions[a, c] for a, c in zip(path, path[1:]))
            weight = np.exp(score)
            total += weight
            for t, y in zip(steps, path):
                out[b, t, y] += weight
        out[b] /= total
    return out


# One sequence, a few, and a batch larger than the small-batch Viterbi path takes.
@pytest.mark.parametrize("batch", [3, SMALL_BATCH + 3])
@pytest.mark.parametrize("scale", [1.0, 6.0])
def test_marginals_match_brute_force_with_gaps_and_padding(batch, scale):
    rng = np.random.default_rng(int(scale) + batch)
    tags, time = 3, 5
    crf = CRF(tags)
    crf.build((None, None, tags))
    for weight in crf.weights:
        weight.assign(rng.normal(0, scale, weight.shape))
    emissions = rng.normal(0, scale, (batch, time, tags)).astype("float32")
    mask = rng.random((batch, time)) < 0.7
    mask[0] = [1, 1, 1, 1, 1]
    mask[1] = [0, 1, 0, 1, 1]  # left padding and a gap
    mask[2] = 0  # no real token at all
    got = crf.marginals(emissions, mask).numpy()
    weights = [w.numpy().astype(np.float64) for w in crf.weights]
    expected = brute_force_marginals(emissions.astype(np.float64), mask, *weights)
    np.testing.assert_allclose(got, expected, atol=2e-6)
    sums = got.sum(-1)
    np.testing.assert_allclose(sums[mask], 1.0, atol=1e-5)
    assert np.all(got[~mask] == 0)


def test_marginals_stay_finite_with_large_scores_and_run_in_a_graph():
    crf = CRF(4)
    crf.build((None, None, 4))
    crf.transitions.assign(np.full((4, 4), 50.0) * np.eye(4) - 50.0)
    emissions = np.random.default_rng(0).normal(0, 200, (2, 30, 4)).astype("float32")
    graph = tf.function(
        crf.marginals,
        input_signature=[tf.TensorSpec([None, None, 4]), tf.TensorSpec([None, None], tf.bool)],
    )
    got = graph(emissions, tf.ones([2, 30], tf.bool)).numpy()
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-5)


def _random_batch(seed, tags, batch, time):
    """A CRF with random weights, and a right-padded batch of random emissions: the
    last sequence is full, and of two or more, the first has no token at all."""
    rng = np.random.default_rng(seed)
    crf = CRF(tags)
    crf.build((None, None, tags))
    for weight in crf.weights:
        weight.assign(rng.normal(0, 2.0, weight.shape))
    emissions = rng.normal(0, 3.0, (batch, time, tags)).astype("float32")
    lengths = rng.integers(1, time + 1, batch)
    lengths[-1] = time
    if batch > 1:
        lengths[0] = 0
    return crf, emissions, np.arange(time)[None] < lengths[:, None]


# Few tags take the full Viterbi step; more than 2 * PRUNE_CANDIDATES take the pruned
# one on batches larger than SMALL_BATCH, with backpointers instead of carried paths.
@pytest.mark.parametrize("tags", [3, 2 * PRUNE_CANDIDATES + 5])
@pytest.mark.parametrize("batch", [1, SMALL_BATCH + 3])
def test_decode_with_marginals_is_decode_and_marginals_in_one_loop(tags, batch):
    crf, emissions, mask = _random_batch(tags + batch, tags, batch, time=6)
    graph = tf.function(
        crf.decode_with_marginals,
        input_signature=[tf.TensorSpec([None, None, tags]), tf.TensorSpec([None, None], tf.bool)],
    )
    got_tags, got_marginals = (x.numpy() for x in graph(emissions, mask))
    np.testing.assert_array_equal(got_tags, crf.decode(emissions, mask).numpy())
    if tags <= 3:
        weights = [w.numpy().astype(np.float64) for w in crf.weights]
        expected = brute_force_marginals(emissions.astype(np.float64), mask, *weights)
    else:
        expected = crf.marginals(emissions, mask).numpy()
    np.testing.assert_allclose(got_marginals, expected, atol=2e-6)
    assert np.all(got_marginals[~mask] == 0)
    empty = graph(np.zeros((2, 0, tags), "float32"), np.zeros((2, 0), bool))
    assert [tuple(x.shape) for x in empty] == [(2, 0), (2, 0, tags)]


@pytest.mark.parametrize("tags", [3, 2 * PRUNE_CANDIDATES + 5])
@pytest.mark.parametrize("batch", [1, SMALL_BATCH + 3])
def test_decode_with_probabilities_is_the_marginal_of_each_decoded_tag(tags, batch):
    """What serving returns: `decode`'s tags and, of the marginals, only each decoded
    tag's; 0 on padding, and empty for no time steps."""
    crf, emissions, mask = _random_batch(3 * tags + batch, tags, batch, time=7)
    graph = tf.function(
        crf.decode_with_probabilities,
        input_signature=[tf.TensorSpec([None, None, tags]), tf.TensorSpec([None, None], tf.bool)],
    )
    got_tags, got = (x.numpy() for x in graph(emissions, mask))
    np.testing.assert_array_equal(got_tags, crf.decode(emissions, mask).numpy())
    marginals = crf.marginals(emissions, mask).numpy()
    expected = np.take_along_axis(marginals, got_tags[..., None], axis=-1)[..., 0]
    np.testing.assert_allclose(got, np.where(mask, expected, 0.0), atol=2e-6)
    assert np.all(got[~mask] == 0) and np.all(got[mask] > 0)
    empty = graph(np.zeros((2, 0, tags), "float32"), np.zeros((2, 0), bool))
    assert [tuple(x.shape) for x in empty] == [(2, 0), (2, 0)]


@pytest.mark.parametrize("batch", [1, SMALL_BATCH + 3])
def test_forced_tokens_are_outside_and_the_rest_is_decoded_given_that(batch):
    """Serving's rule for unseen marks (`_force_outside`): a forced token is
    tagged "O" (id 0) with probability 1, and every other token gets the best path
    and the marginals of the paths that take "O" at the forced tokens, as brute
    force over those paths finds them."""
    crf, emissions, mask = _random_batch(batch, 3, batch, time=5)
    forced = mask & (np.random.default_rng(batch).random(mask.shape) < 0.4)
    forced[-1, 1] = True
    got_tags, got = (
        x.numpy()
        for x in crf.decode_with_probabilities(_force_outside(emissions, forced, True), mask)
    )
    weights = [w.numpy().astype(np.float64) for w in crf.weights]
    # The distribution over the allowed paths: the other tags of a forced token
    # weigh nothing.
    given = np.where(forced[..., None] & (np.arange(3) > 0), -1e9, emissions.astype(np.float64))
    marginals = brute_force_marginals(given, mask, *weights)
    _, best = brute_force(given, np.zeros(mask.shape, int), mask, weights)
    np.testing.assert_array_equal(got_tags[mask], best[mask])
    assert np.all(got_tags[forced] == 0)
    np.testing.assert_allclose(got[forced], 1.0, atol=1e-6)
    expected = np.take_along_axis(marginals, got_tags[..., None], axis=-1)[..., 0]
    np.testing.assert_allclose(got, np.where(mask, expected, 0.0), atol=2e-6)
    # A softmax's rows: "O" certain where forced, the model's own elsewhere.
    probabilities = tf.nn.softmax(emissions).numpy()
    forced_softmax = _force_outside(probabilities, forced, False).numpy()
    np.testing.assert_array_equal(forced_softmax[forced], np.eye(3)[np.zeros(forced.sum(), int)])
    np.testing.assert_array_equal(forced_softmax[~forced], probabilities[~forced])


def test_marginals_of_no_time_steps_are_empty_eagerly_and_in_a_graph():
    crf = CRF(4)
    crf.build((None, None, 4))
    emissions, mask = np.zeros((2, 0, 4), "float32"), np.zeros((2, 0), bool)
    graph = tf.function(
        crf.marginals,
        input_signature=[tf.TensorSpec([None, None, 4]), tf.TensorSpec([None, None], tf.bool)],
    )
    for marginals in (crf.marginals, graph):
        assert tuple(marginals(emissions, mask).shape) == (2, 0, 4)
