"""CRF layer and loss: brute-force references, masking, graphs, training, saving."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from slotkeras.layers.crf import CRF, CRFLoss

NUM_TAGS = 3


def _random_crf(seed, num_tags=NUM_TAGS):
    """A built CRF with random float32 weights, and the same weights in float64."""
    rng = np.random.default_rng(seed)
    crf = CRF(num_tags)
    crf.build((None, None, num_tags))
    weights = [
        rng.normal(size=(num_tags, num_tags)),
        rng.normal(size=(num_tags,)),
        rng.normal(size=(num_tags,)),
    ]
    weights = [w.astype("float32") for w in weights]
    crf.set_weights(weights)
    return crf, [w.astype("float64") for w in weights]


def _path_score(emissions, path, transitions, start, end):
    score = start[path[0]] + end[path[-1]]
    score += sum(emissions[i, tag] for i, tag in enumerate(path))
    score += sum(transitions[a, b] for a, b in zip(path[:-1], path[1:], strict=True))
    return score


def _brute_force(emissions, tags, mask, weights):
    """Log-likelihood and argmax path per sequence, enumerating every tag path."""
    transitions, start, end = weights
    num_tags = emissions.shape[-1]
    log_likelihoods, best_paths = [], []
    for em, tg, m in zip(emissions, tags, mask, strict=True):
        em, tg = em[m], tg[m]  # masked positions are skipped
        best = np.zeros(len(m), "int32")
        if len(em) == 0:
            log_likelihoods.append(0.0)
            best_paths.append(best)
            continue
        paths = list(itertools.product(range(num_tags), repeat=len(em)))
        scores = np.array([_path_score(em, p, transitions, start, end) for p in paths])
        log_likelihoods.append(
            _path_score(em, tg, transitions, start, end) - np.logaddexp.reduce(scores)
        )
        best[m] = paths[int(np.argmax(scores))]
        best_paths.append(best)
    return np.array(log_likelihoods), np.stack(best_paths)


def _batch(seed, lengths, time, num_tags=NUM_TAGS):
    rng = np.random.default_rng(seed)
    emissions = rng.normal(scale=2.0, size=(len(lengths), time, num_tags))
    mask = np.arange(time)[None] < np.array(lengths)[:, None]
    tags = rng.integers(0, num_tags, size=(len(lengths), time))
    tags[~mask] = -1
    return emissions.astype("float32"), tags, mask


CASES = [
    # (seed, lengths, time): mixed right-padded lengths including 0, time 1.
    (0, [4, 3, 0, 2, 1], 4),
    (1, [1, 2, 3, 4, 0, 4], 5),
    (2, [1, 0, 1], 1),
    (3, [4, 4], 4),
]


@pytest.mark.parametrize("seed, lengths, time", CASES)
def test_log_likelihood_and_decode_match_brute_force(seed, lengths, time):
    crf, weights = _random_crf(seed)
    emissions, tags, mask = _batch(seed, lengths, time)
    expected_ll, expected_path = _brute_force(emissions.astype("float64"), tags, mask, weights)

    log_likelihood = crf.log_likelihood(emissions, tags, mask)
    path = crf.decode(emissions, mask)

    assert log_likelihood.dtype == tf.float32 and log_likelihood.shape == (len(lengths),)
    np.testing.assert_allclose(log_likelihood.numpy(), expected_ll, atol=1e-4, rtol=1e-4)
    assert path.dtype == tf.int32
    np.testing.assert_array_equal(path.numpy(), expected_path)


def test_left_padding_and_gaps_skip_masked_positions():
    crf, weights = _random_crf(7)
    emissions, tags, _ = _batch(7, [5, 5, 5], 5)
    mask = np.array(
        [[False, False, True, True, True], [True, False, True, False, True], [False] * 5]
    )
    tags[~mask] = -1
    expected_ll, expected_path = _brute_force(emissions.astype("float64"), tags, mask, weights)
    np.testing.assert_allclose(
        crf.log_likelihood(emissions, tags, mask).numpy(), expected_ll, atol=1e-4
    )
    np.testing.assert_array_equal(crf.decode(emissions, mask).numpy(), expected_path)


def test_no_mask_means_all_real_and_probabilities_sum_to_one():
    crf, _ = _random_crf(4)
    emissions = np.random.default_rng(4).normal(size=(1, 3, NUM_TAGS)).astype("float32")
    paths = np.array(list(itertools.product(range(NUM_TAGS), repeat=3)), "int32")
    log_likelihood = crf.log_likelihood(np.repeat(emissions, len(paths), axis=0), paths)
    np.testing.assert_allclose(np.exp(log_likelihood.numpy()).sum(), 1.0, rtol=1e-5)
    best = crf.decode(emissions).numpy()[0]
    np.testing.assert_array_equal(best, paths[int(np.argmax(log_likelihood.numpy()))])


def test_large_scores_stay_finite():
    crf, _ = _random_crf(5)
    emissions, tags, mask = _batch(5, [4, 2, 0], 4)
    log_likelihood = crf.log_likelihood(emissions * 1e4, tags, mask).numpy()
    assert np.all(np.isfinite(log_likelihood)) and np.all(log_likelihood <= 1e-3)


def test_weights_shapes_names_and_call_is_identity_with_mask():
    crf = CRF(4)
    emissions = np.random.default_rng(0).normal(size=(2, 3, 4)).astype("float32")
    mask = np.array([[True, True, False], [True, False, False]])
    out = crf(emissions, mask=mask)
    np.testing.assert_array_equal(out.numpy(), emissions)
    assert [(w.path.split("/")[-1], tuple(w.shape)) for w in crf.weights] == [
        ("transitions", (4, 4)),
        ("start_transitions", (4,)),
        ("end_transitions", (4,)),
    ]
    assert all(np.all(w.numpy() == 0) for w in crf.weights)  # default "zeros"
    inputs = keras.Input((None, 4))
    masked = keras.layers.Masking()(inputs)
    assert CRF(4)(masked)._keras_mask is not None


def test_invalid_arguments_are_reported():
    with pytest.raises(ValueError, match="`num_tags`.*got -3"):
        CRF(-3)
    with pytest.raises(ValueError, match="num_tags=3"):
        CRF(3)(np.zeros((1, 2, 4), "float32"))
    with pytest.raises(ValueError, match="expected a CRF layer"):
        CRFLoss(keras.layers.Dense(3))


def test_loss_ignores_padding_and_has_gradients():
    crf, weights = _random_crf(6)
    emissions, tags, mask = _batch(6, [4, 1, 0, 3], 4)
    expected_ll, _ = _brute_force(emissions.astype("float64"), tags, mask, weights)
    loss_fn = CRFLoss(crf)

    emissions = tf.Variable(emissions)
    with tf.GradientTape() as tape:
        loss = loss_fn(tags, emissions)
    np.testing.assert_allclose(loss.numpy(), -expected_ll.mean(), rtol=1e-5)
    grads = tape.gradient(loss, [emissions, *crf.trainable_weights])
    assert all(g is not None and np.all(np.isfinite(g.numpy())) for g in grads)
    assert np.all(grads[0].numpy()[~mask] == 0)  # padded emissions do not matter
    assert np.any(grads[0].numpy()[mask] != 0)
    assert all(np.any(g.numpy() != 0) for g in grads[1:])

    # Any values at padded positions give the same loss.
    noisy = emissions.numpy() + np.where(mask[..., None], 0, 100.0).astype("float32")
    np.testing.assert_allclose(loss_fn(tags, noisy).numpy(), loss.numpy(), rtol=1e-6)


def test_graph_with_unknown_batch_and_time_and_xla():
    crf, _ = _random_crf(8)
    spec = [
        tf.TensorSpec([None, None, NUM_TAGS], tf.float32),
        tf.TensorSpec([None, None], tf.int32),
        tf.TensorSpec([None, None], tf.bool),
    ]

    def both(emissions, tags, mask):
        return crf.log_likelihood(emissions, tags, mask), crf.decode(emissions, mask)

    graph_fn = tf.function(both, input_signature=spec)
    xla_fn = tf.function(both, jit_compile=True)
    for seed, lengths, time in CASES:
        emissions, tags, mask = _batch(seed, lengths, time)
        eager_ll, eager_path = both(emissions, tags, mask)
        # XLA compiles once per shape: a mixed batch and a time of 1 suffice.
        for fn in (graph_fn, xla_fn) if seed in (0, 2) else (graph_fn,):
            log_likelihood, path = fn(emissions, tf.constant(tags, tf.int32), mask)
            np.testing.assert_allclose(log_likelihood.numpy(), eager_ll.numpy(), atol=1e-5)
            np.testing.assert_array_equal(path.numpy(), eager_path.numpy())
    assert graph_fn.experimental_get_tracing_count() == 1  # one trace for all shapes


def test_decode_survives_saved_model_export(tmp_path):
    crf, _ = _random_crf(9)
    module = tf.Module()
    module.crf = crf
    module.decode = tf.function(
        crf.decode,
        input_signature=[
            tf.TensorSpec([None, None, NUM_TAGS], tf.float32),
            tf.TensorSpec([None, None], tf.bool),
        ],
    )
    tf.saved_model.save(module, str(tmp_path / "decoder"))
    restored = tf.saved_model.load(str(tmp_path / "decoder"))
    for seed, lengths, time in CASES:
        emissions, _, mask = _batch(seed, lengths, time)
        np.testing.assert_array_equal(
            restored.decode(emissions, mask).numpy(), crf.decode(emissions, mask).numpy()
        )


# Toy BIO task: tokens say "outside", "begins a PER", "begins a LOC" or
# "inside". An inside token's tag (I-PER or I-LOC) is the type of the entity
# it continues, which only the transition from the previous tag can tell.
_O, _B_PER, _I_PER, _B_LOC, _I_LOC = range(5)


def _toy_data(num_examples, time, seed):
    rng = np.random.default_rng(seed)
    tokens = np.full((num_examples, time), -1)
    tags = np.full((num_examples, time), -1)
    for row in range(num_examples):
        length = rng.integers(1, time + 1)
        t = 0
        while t < length:
            kind = rng.integers(3)
            if kind == 0:
                tokens[row, t], tags[row, t] = 0, _O
                t += 1
                continue
            begin, inside = (_B_PER, _I_PER) if kind == 1 else (_B_LOC, _I_LOC)
            span = min(rng.integers(1, 4), length - t)
            tokens[row, t : t + span] = [kind] + [3] * (span - 1)
            tags[row, t : t + span] = [begin] + [inside] * (span - 1)
            t += span
    features = np.zeros((num_examples, time, 4), "float32")
    rows, cols = np.nonzero(tokens >= 0)
    features[rows, cols, tokens[rows, cols]] = 1.0  # padding stays all-zero
    return features, tags


def _tagger(num_tags=5):
    inputs = keras.Input((None, 4), name="features")
    x = keras.layers.Masking(name="masking")(inputs)
    x = keras.layers.Dense(num_tags, name="emissions")(x)
    outputs = CRF(num_tags, name="crf")(x)
    return keras.Model(inputs, outputs, name="tagger")


def test_tiny_tagger_learns_transitions(tmp_path):
    keras.utils.set_random_seed(0)
    features, tags = _toy_data(64, 8, seed=0)
    model = _tagger()
    crf = model.get_layer("crf")
    # jit_compile=True: the loss and its gradient also compile with XLA.
    model.compile(keras.optimizers.Adam(0.05), loss=CRFLoss(crf), jit_compile=True)
    batches = tf.data.Dataset.from_tensors((features, tags)).repeat()
    history = model.fit(batches, steps_per_epoch=50, epochs=4, shuffle=False, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0] / 10

    test_features, test_tags = _toy_data(64, 8, seed=1)
    mask = test_tags >= 0
    emissions = model.predict(test_features, verbose=0)
    path = crf.decode(emissions, mask).numpy()
    accuracy = np.mean(path[mask] == test_tags[mask])
    assert accuracy > 0.99
    inside = mask & np.isin(test_tags, [_I_PER, _I_LOC])
    assert inside.sum() > 20 and np.all(path[inside] == test_tags[inside])

    # Save and reload: config round trip, same weights, same decoded tags.
    path_file = tmp_path / "tagger.keras"
    model.save(path_file)
    reloaded = keras.saving.load_model(path_file)
    reloaded_crf = reloaded.get_layer("crf")
    assert reloaded_crf.get_config() == crf.get_config()
    for a, b in zip(reloaded.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    reloaded_path = reloaded_crf.decode(reloaded.predict(test_features, verbose=0), mask)
    np.testing.assert_array_equal(reloaded_path.numpy(), path)

    # The reloaded loss has no layer to hold; it says so, and recompiling works.
    with pytest.raises(ValueError, match="'crf'.*Compile the model again"):
        reloaded.evaluate(test_features, test_tags, verbose=0)
    reloaded.compile("adam", loss=CRFLoss(reloaded_crf))
    loss = reloaded.evaluate(test_features, test_tags, verbose=0)
    expected = -np.mean(reloaded_crf.log_likelihood(emissions, test_tags, mask).numpy())
    np.testing.assert_allclose(loss, expected, rtol=1e-4)


def test_config_round_trip():
    crf = CRF(7, transitions_initializer="glorot_uniform", name="slots")
    config = crf.get_config()
    assert config["num_tags"] == 7
    clone = CRF.from_config(config)
    assert clone.get_config() == config
    clone.build((None, None, 7))
    assert np.any(clone.transitions.numpy() != 0)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(crf))
    assert isinstance(restored, CRF) and restored.get_config() == config


def _numpy_viterbi(emissions, mask, weights):
    """Best path per sequence by dynamic programming in float64 (lowest tag on ties)."""
    transitions, start, end = weights
    paths = np.zeros(mask.shape, "int32")
    for b, (em, m) in enumerate(zip(emissions.astype("float64"), mask, strict=True)):
        em = em[m]
        if len(em) == 0:
            continue
        delta, pointers = start + em[0], []
        for t in range(1, len(em)):
            candidates = delta[:, None] + transitions  # [i, j]
            pointers.append(np.argmax(candidates, axis=0))
            delta = candidates.max(axis=0) + em[t]
        path = [int(np.argmax(delta + end))]
        for back in reversed(pointers):
            path.append(int(back[path[-1]]))
        paths[b, m] = path[::-1]
    return paths


@pytest.mark.parametrize("rows", [8, 3, 1])
@pytest.mark.parametrize("scale", [0.05, 1.0, 8.0])
def test_decode_with_many_tags_matches_dynamic_programming(scale, rows):
    """With more tags than twice `PRUNE_CANDIDATES`, Viterbi looks at the best
    previous tags only when that is provably exact. Flat emissions (scale 0.05)
    make the check fail and the step fall back; peaked ones (8.0) let it pass;
    both must give the exact best path. Batches of at most `SMALL_BATCH` rows take
    the full step and carry paths forwards instead: the same answer."""
    from slotkeras.layers import crf as crf_module

    num_tags = 3 * crf_module.PRUNE_CANDIDATES + 1
    crf, weights = _random_crf(7, num_tags)
    rng = np.random.default_rng(int(scale * 100))
    lengths = [9, 1, 0, 5, 9, 3, 7, 8]
    emissions = (rng.normal(size=(len(lengths), 9, num_tags)) * scale).astype("float32")
    mask = np.arange(9)[None] < np.array(lengths)[:, None]
    mask[0, 4] = False  # a gap: masked steps are skipped wherever they are
    emissions, mask = emissions[:rows], mask[:rows]
    assert (rows <= crf_module.SMALL_BATCH) == (rows < 8)
    np.testing.assert_array_equal(
        crf.decode(emissions, mask).numpy(), _numpy_viterbi(emissions, mask, weights)
    )


@pytest.mark.parametrize("scale", [0.05, 8.0])
def test_decode_with_marginals_on_batches_is_exact_when_pruning_fails(scale):
    """The serving loop's pruned Viterbi steps are checked once after the loop;
    flat emissions (0.05) fail the check and the full steps decide, peaked ones
    (8.0) pass it: the exact best path either way, on right-padded batches."""
    from slotkeras.layers import crf as crf_module

    num_tags = 3 * crf_module.PRUNE_CANDIDATES + 1
    crf, weights = _random_crf(11, num_tags)
    rng = np.random.default_rng(int(scale * 100) + 1)
    lengths = np.array([9, 1, 0, 5, 9, 3, 7, 8, 2, 6])
    emissions = (rng.normal(size=(len(lengths), 9, num_tags)) * scale).astype("float32")
    mask = np.arange(9)[None] < lengths[:, None]
    assert len(lengths) > crf_module.SMALL_BATCH
    tags, _ = crf.decode_with_marginals(emissions, mask)
    np.testing.assert_array_equal(tags.numpy(), _numpy_viterbi(emissions, mask, weights))


@pytest.mark.parametrize("serving", [False, True])
def test_only_the_sequences_that_pruning_left_unproven_are_decoded_again(serving, monkeypatch):
    """Peaked rows pass the pruned steps' proof, flat ones fail it. The full steps
    run again on the failing rows only (a trained model fails about one token in a
    thousand, so rerunning whole batches ran them for nearly every batch), and every
    row gets its exact best path."""
    from slotkeras.layers import crf as crf_module

    num_tags = 3 * crf_module.PRUNE_CANDIDATES + 1
    crf, weights = _random_crf(13, num_tags)
    rng = np.random.default_rng(5)
    lengths = np.array([9, 4, 9, 6, 0, 8, 9, 3, 7, 9])
    flat = np.array([False, False, True, False, False, False, True, False, False, False])
    scale = np.where(flat, 0.05, 30.0)[:, None, None]
    emissions = (rng.normal(size=(len(lengths), 9, num_tags)) * scale).astype("float32")
    mask = np.arange(9)[None] < lengths[:, None]
    rerun = []
    viterbi = CRF._viterbi

    def spy(self, emissions, mask, carry_paths, prune=False):
        if not prune:
            rerun.append(int(tf.shape(emissions)[0]))
        return viterbi(self, emissions, mask, carry_paths, prune)

    monkeypatch.setattr(CRF, "_viterbi", spy)
    assert len(lengths) > crf_module.SMALL_BATCH  # the pruned steps
    tags = crf.decode_with_marginals(emissions, mask)[0] if serving else crf.decode(emissions, mask)
    np.testing.assert_array_equal(tags.numpy(), _numpy_viterbi(emissions, mask, weights))
    assert rerun == [int(flat.sum())]


def test_pruned_step_is_exact_and_prunes_when_scores_are_peaked():
    from slotkeras.layers import crf as crf_module

    rng = np.random.default_rng(0)
    num_tags = 120
    transitions = tf.constant(rng.normal(size=(num_tags, num_tags)).astype("float32"))
    for scale, expect_pruned in ((20.0, True), (0.01, False)):
        delta = tf.constant((rng.normal(size=(64, num_tags)) * scale).astype("float32"))
        full = crf_module._max_plus(delta, transitions)
        best, best_prev, exact = crf_module._pruned_max_plus(delta, transitions)
        # The bound, per sequence: whether the pruned answer is proven to be the full one.
        top = tf.math.top_k(delta, crf_module.PRUNE_CANDIDATES).values[:, -1:]
        bound = top + tf.reduce_max(transitions, axis=0)[None]
        np.testing.assert_array_equal(exact.numpy(), tf.reduce_all(full[0] > bound, axis=1).numpy())
        assert bool(tf.reduce_all(exact)) == expect_pruned
        # Where it is proven, it is the full answer, ties to the lowest tag included.
        proven = exact.numpy()
        np.testing.assert_array_equal(best.numpy()[proven], full[0].numpy()[proven])
        np.testing.assert_array_equal(best_prev.numpy()[proven], full[1].numpy()[proven])


def test_no_time_steps_give_zero_log_likelihood_and_an_empty_path():
    crf, _ = _random_crf(0)
    emissions = np.zeros((2, 0, NUM_TAGS), "float32")
    mask = np.zeros((2, 0), bool)
    np.testing.assert_array_equal(
        crf.log_likelihood(emissions, np.zeros((2, 0), "int32"), mask).numpy(), [0.0, 0.0]
    )
    assert crf.decode(emissions, mask).numpy().shape == (2, 0)
