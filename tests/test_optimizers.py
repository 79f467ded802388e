"""FusedAdam and LazyAdam against Keras' Adam and NumPy references; weight averaging
during validation; the learning-rate decay."""

import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from slotkeras.callbacks import AveragedWeights
from slotkeras.optimizers import FUSED_SLICE_SHARE, FusedAdam, LazyAdam


def _lazy_adam_reference(table, steps, lr, b1=0.9, b2=0.999, eps=1e-7):
    """Row-wise Adam in float64: rows missing from a step keep value and moments."""
    table = table.astype("float64")
    m = np.zeros_like(table)
    v = np.zeros_like(table)
    for t, (rows, grads) in enumerate(steps, start=1):
        summed = {}
        for row, grad in zip(rows, grads, strict=True):
            summed[row] = summed.get(row, 0.0) + grad
        alpha = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        for row, grad in summed.items():
            m[row] = b1 * m[row] + (1 - b1) * grad
            v[row] = b2 * v[row] + (1 - b2) * grad**2
            table[row] -= alpha * m[row] / (np.sqrt(v[row]) + eps)
    return table


def test_sparse_updates_touch_only_used_rows_and_match_reference():
    rng = np.random.default_rng(0)
    start = rng.normal(size=(10, 3)).astype("float32")
    table = keras.Variable(start)
    optimizer = LazyAdam(learning_rate=0.1)
    # Repeated rows within a step are summed, as a lookup's gradient would be.
    steps = [([1, 4, 1], rng.normal(size=(3, 3))), ([4, 7], rng.normal(size=(2, 3)))]
    for rows, grads in steps:
        grad = tf.IndexedSlices(tf.constant(grads, tf.float32), tf.constant(rows), (10, 3))
        optimizer.apply_gradients([(grad, table)])
    result = table.numpy()
    np.testing.assert_allclose(result, _lazy_adam_reference(start, steps, 0.1), atol=1e-5)
    untouched = [0, 2, 3, 5, 6, 8, 9]
    np.testing.assert_array_equal(result[untouched], start[untouched])
    assert not np.allclose(result[[1, 4, 7]], start[[1, 4, 7]])


def test_dense_gradients_and_first_sparse_step_equal_adam():
    rng = np.random.default_rng(1)
    start = rng.normal(size=(6, 2)).astype("float32")
    grads = [rng.normal(size=(6, 2)).astype("float32") for _ in range(3)]
    results = []
    for cls in (LazyAdam, keras.optimizers.Adam):
        variable = keras.Variable(start)
        optimizer = cls(learning_rate=0.05)
        for grad in grads:
            optimizer.apply_gradients([(tf.constant(grad), variable)])
        results.append(variable.numpy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-6, atol=1e-7)

    # A lookup's gradient on the first step: both update the looked-up rows alike.
    # (Distinct rows: for a repeated row Keras' Adam squares each slice before
    # summing, where the gradient of the row is the sum of the slices.)
    results = []
    for cls in (LazyAdam, keras.optimizers.Adam):
        variable = keras.Variable(start)
        optimizer = cls(learning_rate=0.05)
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.gather(variable.value, [0, 3]) ** 2)
        optimizer.apply_gradients([(tape.gradient(loss, variable.value), variable)])
        results.append(variable.numpy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-6, atol=1e-7)


def _adam_reference(start, gradients, lr, b1=0.9, b2=0.999, eps=1e-7):
    """Adam in float64 on dense gradients: every row's moments decay at every step."""
    weight = start.astype("float64")
    m = np.zeros_like(weight)
    v = np.zeros_like(weight)
    for t, grad in enumerate(gradients, start=1):
        m = b1 * m + (1 - b1) * grad
        v = b2 * v + (1 - b2) * grad**2
        weight = weight - lr * np.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps)
    return weight


def _apply_all(optimizer, variables, steps):
    """Applies each step's gradients (a list per step) in one traced function, as `fit`
    does; `tf.IndexedSlices` are given as (values, indices, dense_shape)."""

    @tf.function
    def apply(*gradients):
        gradients = [tf.IndexedSlices(*g) if isinstance(g, tuple) else g for g in gradients]
        optimizer.apply_gradients(zip(gradients, variables, strict=True))

    for gradients in steps:
        apply(*gradients)


def test_fused_adam_equals_keras_adam_on_dense_gradients_with_clipping_and_averaging():
    rng = np.random.default_rng(4)
    starts = [rng.normal(size=(7, 3)).astype("float32"), rng.normal(size=(5,)).astype("float32")]
    steps = [
        [tf.constant(3 * rng.normal(size=s.shape), tf.float32) for s in starts] for _ in range(8)
    ]
    results = []
    for cls in (FusedAdam, keras.optimizers.Adam):
        variables = [keras.Variable(s) for s in starts]
        optimizer = cls(0.05, clipnorm=2.0, use_ema=True, ema_momentum=0.9)
        _apply_all(optimizer, variables, steps)
        assert int(optimizer.iterations) == 8
        results.append(
            [v.numpy() for v in variables]
            + [m.numpy() for m in optimizer._momentums + optimizer._velocities]
            + [a.numpy() for a in optimizer._model_variables_moving_average]
        )
    for fused, reference in zip(*results, strict=True):
        np.testing.assert_allclose(fused, reference, rtol=1e-5, atol=1e-5)


def _lookup_steps(rng, table_rows, looked_up, count=6, slices=10, width=4):
    """Lookup gradients with repeated rows: rows `looked_up` and above are never looked
    up, and the last step looks up the rows under `looked_up // 2` only. Returns the
    steps (for `_apply_all`) and each step's dense gradient (its slices summed)."""
    steps, dense = [], []
    for step in range(count):
        rows = rng.integers(0, looked_up if step < count - 1 else looked_up // 2, size=slices)
        values = rng.normal(size=(slices, width))
        steps.append([(tf.constant(values, tf.float32), tf.constant(rows), (table_rows, width))])
        summed = np.zeros((table_rows, width))
        np.add.at(summed, rows, values)
        dense.append(summed)
    return steps, dense


@pytest.mark.parametrize("table_rows", [12, 400])  # Keras' update / the fused one
def test_fused_adam_equals_keras_adam_on_lookups_with_repeated_rows(table_rows):
    rng = np.random.default_rng(7)
    start = rng.normal(size=(table_rows, 4)).astype("float32")
    steps, _ = _lookup_steps(rng, table_rows, looked_up=6, slices=30)
    share = 30 / start.size
    assert (share < FUSED_SLICE_SHARE) == (table_rows == 400)
    results = []
    for cls in (FusedAdam, keras.optimizers.Adam):
        table = keras.Variable(start)
        optimizer = cls(0.1, clipnorm=2.0)
        _apply_all(optimizer, [table], steps)
        results.append([table.numpy(), optimizer._momentums[0].numpy()])
        results[-1].append(optimizer._velocities[0].numpy())
    for fused, reference in zip(*results, strict=True):
        np.testing.assert_allclose(fused, reference, rtol=1e-5, atol=1e-5)


def test_summed_fused_adam_is_adam_on_the_summed_rows_and_moves_every_row():
    rng = np.random.default_rng(5)
    start = rng.normal(size=(12, 4)).astype("float32")
    steps, dense = _lookup_steps(rng, 12, looked_up=6)
    table = keras.Variable(start)
    _apply_all(FusedAdam(0.1, square_slices=False), [table], steps)
    result = table.numpy()
    np.testing.assert_allclose(result, _adam_reference(start, dense, 0.1), rtol=1e-5, atol=1e-5)
    # A row with no gradient is left as it is; one that had a gradient keeps moving on
    # its momentum after its last lookup (LazyAdam would leave it).
    np.testing.assert_array_equal(result[6:], start[6:])
    before_last = keras.Variable(start)
    _apply_all(FusedAdam(0.1, square_slices=False), [before_last], steps[:-1])
    for row in (3, 4, 5):
        assert not np.allclose(result[row], before_last.numpy()[row])


def test_training_compiles_the_chosen_adam_and_fused_adam_saves_and_loads(tmp_path):
    from slotkeras.compiled_tagger import build_compiled_tagger
    from slotkeras.config import TrainConfig

    settings = dict(units=4, embedding_dim=4, hash_dim=4, hash_buckets=8, pair_buckets=8)
    for name, cls, square_slices in (
        (None, FusedAdam, True),
        ("adam", FusedAdam, True),
        ("lazy_adam", LazyAdam, None),
        ("summed_adam", FusedAdam, False),
    ):
        config = TrainConfig(**settings, **({"optimizer": name} if name else {}))
        optimizer = build_compiled_tagger(config, 5, 10, 3).optimizer
        assert type(optimizer) is cls
        assert getattr(optimizer, "square_slices", None) == square_slices

    inputs = keras.Input((None,), dtype="int32")
    outputs = keras.layers.Dense(1)(keras.layers.Embedding(20, 4)(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(FusedAdam(0.01, clipnorm=2.0, square_slices=False), "mse")
    x = np.random.default_rng(6).integers(0, 20, size=(16, 5))
    model.fit(x, np.ones((16, 5, 1)), epochs=2, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert type(loaded.optimizer) is FusedAdam
    assert loaded.optimizer.clipnorm == 2.0
    assert loaded.optimizer.square_slices is False
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    for ours, theirs in zip(loaded.optimizer.variables, model.optimizer.variables, strict=True):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_a_model_folder_trained_with_the_fused_optimizer_loads_in_a_fresh_process(tmp_path):
    """The saved model is the trained weights without the optimizer (its moments and
    averages would triple model.keras): no compiled optimizer is recorded, and
    `evaluate.py` loads it in a process of its own."""
    from conftest import ROOT, explain, run, write

    rows = (ROOT / "data" / "train.csv").read_text(encoding="utf-8").splitlines()
    data = write(tmp_path / "small.csv", "\n".join(rows[:41]) + "\n")
    folder = tmp_path / "model"
    trained = run([
        "train.py", "--train", data, "--epochs", "1", "--units", "4", "--embedding-dim", "4",
        "--hash-dim", "4", "--hash-buckets", "64", "--output", folder, "--verbose", "0",
        "--no-export", "--epoch-utterances", "1",
    ])  # fmt: skip
    assert trained.returncode == 0, explain(trained)
    with zipfile.ZipFile(folder / "model.keras") as archive:
        saved = archive.read("config.json").decode("utf-8")
    assert '"FusedAdam"' not in saved
    evaluated = run(["evaluate.py", "--model", folder, "--data", data])
    assert evaluated.returncode == 0, explain(evaluated)
    assert "utterances 40" in evaluated.stdout, explain(evaluated)


def test_lazy_adam_saves_and_loads_in_a_model(tmp_path):
    inputs = keras.Input((None,), dtype="int32")
    outputs = keras.layers.Dense(1)(keras.layers.Embedding(20, 4)(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(LazyAdam(0.01, clipnorm=5.0), "mse")
    x = np.random.default_rng(2).integers(0, 20, size=(16, 5))
    model.fit(x, np.ones((16, 5, 1)), epochs=2, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert isinstance(loaded.optimizer, LazyAdam)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_averaged_weights_puts_the_moving_average_in_at_epoch_end_and_takes_it_out():
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(keras.optimizers.Adam(0.1, use_ema=True, ema_momentum=0.5), "mse")
    x = np.random.default_rng(3).normal(size=(32, 3))
    for batch in np.split(x, 4):  # not `fit`, which ends by copying the averages in
        model.train_on_batch(batch, np.zeros((8, 2)))
    trained = [w.copy() for w in model.get_weights()]
    averages = [v.numpy() for v in model.optimizer._model_variables_moving_average]
    assert not all(np.allclose(a, t) for a, t in zip(averages, trained, strict=True))
    callback = AveragedWeights()
    callback.set_model(model)
    callback.on_epoch_end(0)
    for inside, average in zip(model.get_weights(), averages, strict=True):
        np.testing.assert_array_equal(inside, average)
    for kept, before in zip(callback.training_weights(), trained, strict=True):
        np.testing.assert_array_equal(kept, before)  # what the checkpoint saves
    callback.on_epoch_begin(1)
    for after, before in zip(model.get_weights(), trained, strict=True):
        np.testing.assert_array_equal(after, before)  # exact: copies, not a + b - b

    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    plain.compile("adam", "mse")
    before = [w.copy() for w in plain.get_weights()]
    callback = AveragedWeights()
    callback.set_model(plain)
    callback.on_epoch_end(0)  # no average kept: nothing changes
    for inside, weight in zip(plain.get_weights(), before, strict=True):
        np.testing.assert_array_equal(inside, weight)


def test_learning_rate_falls_by_the_decay_factor_each_epoch():
    from slotkeras.compiled_tagger import build_compiled_tagger
    from slotkeras.config import TrainConfig

    def compiled(**settings):
        config = TrainConfig(units=4, embedding_dim=4, hash_dim=4, hash_buckets=8, **settings)
        return build_compiled_tagger(config, 5, 10, 3, steps_per_epoch=4).optimizer

    optimizer = compiled(learning_rate=0.01, learning_rate_decay=0.5)
    for step, expected in ((0, 0.01), (2, 0.01 * 0.5**0.5), (4, 0.005), (12, 0.00125)):
        optimizer.iterations.assign(step)
        np.testing.assert_allclose(float(optimizer.learning_rate), expected, rtol=1e-5)
    constant = compiled(learning_rate=0.01)
    constant.iterations.assign(100)
    np.testing.assert_allclose(float(constant.learning_rate), 0.01, rtol=1e-6)


def test_the_warmed_up_weight_average_follows_the_num_updates_rule():
    """With `ema_warmup` the average's momentum at step t is min(m, (1 + t) / (10 + t))
    (the first step copies the weights); without it, Keras's fixed m, which leaves a
    short run's average near its initial weights."""
    import tensorflow as tf

    averages = {}
    for warmup in (True, False):
        variable = tf.Variable([1.0, -2.0])
        optimizer = FusedAdam(0.1, use_ema=True, ema_momentum=0.99, ema_warmup=warmup)
        optimizer.build([variable])
        expected, values = None, []
        for t in range(6):
            optimizer.apply([tf.constant([0.5, -0.25])], [variable])
            value = variable.numpy()
            momentum = 0.0 if t == 0 else (min(0.99, (1 + t) / (10 + t)) if warmup else 0.99)
            expected = value if expected is None else momentum * expected + (1 - momentum) * value
            values.append(value)
        averages[warmup] = optimizer._model_variables_moving_average[0].numpy()
        np.testing.assert_allclose(averages[warmup], expected, rtol=1e-6)
    # Six steps in, the warmed-up average is near the latest weights, Keras's near the first.
    assert abs(averages[True] - values[-1]).max() < abs(averages[True] - values[0]).max()
    assert abs(averages[False] - values[0]).max() < abs(averages[False] - values[-1]).max()
