"""CRF marginals (forward-backward) against brute-force enumeration of all paths."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from slotkeras.layers.crf import CRF, SMALL_BATCH


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
