"""Decoding that keeps to what BIO and BIOES notation allows (`CRF(tag_names=...)`)."""

import itertools

import numpy as np
import pytest
import tensorflow as tf
from test_crf import _numpy_viterbi  # float64 dynamic programming

from slotkeras.layers import crf as crf_module
from slotkeras.layers.crf import CRF, allowed_transitions

BIOES = ["O", "B-a", "I-a", "E-a", "S-a", "B-b", "I-b", "E-b", "S-b"]


def test_allowed_transitions_of_bio():
    names = ["O", "B-a", "I-a", "B-b", "I-b"]
    transitions, start, end = allowed_transitions(names)
    index = {name: i for i, name in enumerate(names)}

    def may(before, after):
        return transitions[index[before], index[after]]

    assert may("B-a", "I-a") and may("I-a", "I-a") and may("O", "B-a") and may("I-b", "B-a")
    assert may("B-a", "O") and may("I-a", "B-a")
    assert not may("O", "I-a") and not may("B-b", "I-a") and not may("I-b", "I-a")
    assert start.tolist() == [True, True, False, True, False]
    assert end.all()


def test_allowed_transitions_of_bioes_and_of_other_names():
    transitions, start, end = allowed_transitions(BIOES + ["X"])
    index = {name: i for i, name in enumerate(BIOES + ["X"])}

    def may(before, after):
        return transitions[index[before], index[after]]

    for before, after in [("B-a", "I-a"), ("B-a", "E-a"), ("I-a", "E-a"), ("E-a", "B-b"),
                          ("S-a", "S-a"), ("O", "S-b"), ("E-b", "O"), ("X", "I-a"),
                          ("B-a", "X")]:  # fmt: skip
        assert may(before, after), (before, after)
    for before, after in [("B-a", "O"), ("B-a", "B-a"), ("I-a", "S-a"), ("I-a", "E-b"),
                          ("O", "E-a"), ("O", "I-a"), ("E-a", "I-a"), ("S-a", "E-a")]:  # fmt: skip
        assert not may(before, after), (before, after)
    started = {name for name, ok in zip(BIOES + ["X"], start, strict=True) if ok}
    ended = {name for name, ok in zip(BIOES + ["X"], end, strict=True) if ok}
    assert started == {"O", "B-a", "S-a", "B-b", "S-b", "X"}
    assert ended == {"O", "E-a", "S-a", "E-b", "S-b", "X"}


def _weights(seed, num_tags, scale):
    rng = np.random.default_rng(seed)
    return [
        (rng.normal(size=shape) * scale).astype("float32")
        for shape in ((num_tags, num_tags), (num_tags,), (num_tags,))
    ]


def _crfs(names, weights):
    """The same weights in a CRF without names and in one with them."""
    crfs = (CRF(len(names)), CRF(len(names), tag_names=names))
    for crf in crfs:
        crf.build((None, None, len(names)))
        crf.set_weights(weights)
    return crfs


def _is_well_formed(path, names):
    transitions, start, end = allowed_transitions(names)
    return bool(
        start[path[0]]
        and end[path[-1]]
        and all(transitions[a, b] for a, b in zip(path[:-1], path[1:], strict=True))
    )


def _brute_force(emissions, mask, weights, names):
    """Best well-formed path and marginals over the well-formed paths, enumerated."""
    transitions, start, end = (w.astype("float64") for w in weights)
    best_paths = np.zeros(mask.shape, "int32")
    marginals = np.zeros(emissions.shape)
    for b, (em, m) in enumerate(zip(emissions.astype("float64"), mask, strict=True)):
        steps = np.flatnonzero(m)
        paths = [
            p
            for p in itertools.product(range(len(names)), repeat=len(steps))
            if _is_well_formed(p, names)
        ]
        scores = np.array(
            [
                start[p[0]] + end[p[-1]] + em[steps, p].sum()
                + sum(transitions[x, y] for x, y in zip(p[:-1], p[1:], strict=True))
                for p in paths
            ]
        )  # fmt: skip
        best_paths[b, steps] = paths[int(np.argmax(scores))]
        probabilities = np.exp(scores - scores.max())
        probabilities /= probabilities.sum()
        for p, weight in zip(paths, probabilities, strict=True):
            marginals[b, steps, p] += weight
    return best_paths, marginals


# A few sequences (the small-batch Viterbi) and more than `SMALL_BATCH` (the batch one).
@pytest.mark.parametrize("rows", [2, crf_module.SMALL_BATCH + 2])
def test_decoding_gives_the_best_well_formed_path_and_its_marginals(rows):
    """Random transitions and emissions make the unconstrained best path ill formed
    in most sequences; with the names every decoded path is the best well-formed
    one, and the marginals are those of the well-formed paths only."""
    weights = _weights(0, len(BIOES), scale=3.0)
    rng = np.random.default_rng(1)
    lengths = ([4, 1, 3, 4, 2, 4] * 2)[:rows]
    emissions = (rng.normal(size=(rows, 4, len(BIOES))) * 3.0).astype("float32")
    mask = np.arange(4)[None] < np.array(lengths)[:, None]
    plain, constrained = _crfs(BIOES, weights)
    unconstrained_paths = plain.decode(emissions, mask).numpy()
    assert not all(
        _is_well_formed(path[:n].tolist(), BIOES)
        for path, n in zip(unconstrained_paths, lengths, strict=True)
    )
    best, marginals = _brute_force(emissions, mask, weights, BIOES)
    np.testing.assert_array_equal(constrained.decode(emissions, mask).numpy(), best)
    np.testing.assert_allclose(constrained.marginals(emissions, mask).numpy(), marginals, atol=2e-5)
    tags, fused_marginals = constrained.decode_with_marginals(emissions, mask)
    np.testing.assert_array_equal(tags.numpy(), best)
    np.testing.assert_allclose(fused_marginals.numpy(), marginals, atol=2e-5)


def test_pruned_viterbi_of_many_tags_keeps_to_the_notation():
    """With more tags than twice `PRUNE_CANDIDATES`, batches take the pruned
    Viterbi step: it too finds the best well-formed path."""
    names = ["O"] + [f"{p}-t{k}" for k in range(6) for p in "BIES"]
    assert len(names) > 2 * crf_module.PRUNE_CANDIDATES
    weights = _weights(2, len(names), scale=2.0)
    rng = np.random.default_rng(3)
    lengths = [9, 1, 5, 9, 3, 7, 8, 2]
    emissions = (rng.normal(size=(len(lengths), 9, len(names))) * 4.0).astype("float32")
    mask = np.arange(9)[None] < np.array(lengths)[:, None]
    transitions, start, end = allowed_transitions(names)
    ruled_out = [
        w + np.where(allowed, 0.0, -1e9)
        for w, allowed in zip(weights, (transitions, start, end), strict=True)
    ]
    expected = _numpy_viterbi(emissions, mask, ruled_out)
    _, constrained = _crfs(names, weights)
    np.testing.assert_array_equal(constrained.decode(emissions, mask).numpy(), expected)
    np.testing.assert_array_equal(
        constrained.decode_with_marginals(emissions, mask)[0].numpy(), expected
    )
    for path, n in zip(expected, lengths, strict=True):
        assert _is_well_formed(path[:n].tolist(), names)


def test_training_is_not_constrained_and_the_names_are_saved():
    weights = _weights(4, len(BIOES), scale=1.0)
    plain, constrained = _crfs(BIOES, weights)
    rng = np.random.default_rng(5)
    emissions = rng.normal(size=(3, 4, len(BIOES))).astype("float32")
    tags = rng.integers(0, len(BIOES), size=(3, 4))
    np.testing.assert_allclose(
        constrained.log_likelihood(emissions, tags).numpy(),
        plain.log_likelihood(emissions, tags).numpy(),
    )
    config = constrained.get_config()
    assert config["tag_names"] == BIOES and plain.get_config()["tag_names"] is None
    assert CRF.from_config(config).get_config() == config
    with pytest.raises(ValueError, match="tag_names"):
        CRF(3, tag_names=["O", "B-a"])


@pytest.mark.parametrize("scheme", ["BI", "BIES"])
def test_pruned_step_under_constraints_is_exact_where_scores_are_peaked(scheme):
    """Pruning over all tags fails its check at nearly every constrained step (a
    continuing tag whose `B-x`/`I-x` are not among the best rows scores the
    penalty), so a batch would run Viterbi twice. The constrained step prunes the
    starting tags over their allowed rows and takes the continuing ones from their
    own predecessors: proven exact on peaked scores, and equal to the full step."""
    names = ["O"] + [f"{p}-t{k}" for k in range(30) for p in scheme]
    rng = np.random.default_rng(0)
    weights = _weights(6, len(names), scale=1.0)
    _, crf = _crfs(names, weights)
    transitions = crf._weights(constrained=True)[0]
    delta = tf.constant((rng.normal(size=(64, len(names))) * 20.0).astype("float32"))
    full_best, full_prev = crf_module._max_plus(delta, transitions)
    best, best_prev, exact = crf._pruned_step(transitions)(delta)
    assert bool(tf.reduce_all(exact))
    np.testing.assert_array_equal(best.numpy(), full_best.numpy())
    np.testing.assert_array_equal(best_prev.numpy(), full_prev.numpy())
    # Pruned over every row, the same step proves nothing.
    assert not bool(tf.reduce_any(crf_module._pruned_max_plus(delta, transitions)[2]))
