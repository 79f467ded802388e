"""Tests of the per-word context features: neighbour pairs and the ordered-trigram CNN."""

import json

import keras
import numpy as np
import pytest

from slotkeras.config import TrainConfig
from slotkeras.layers.hashed_word_embedding import HashedWordEmbedding
from slotkeras.layers.neighbour_pairs import NeighbourPairEmbedding
from slotkeras.layers.trigram_cnn import TrigramCNN
from slotkeras.models import build_tagger, tagger_options


def test_pair_ids_depend_on_the_pair_alone():
    layer = NeighbourPairEmbedding(num_buckets=1 << 20, output_dim=2)
    # "7 5 9" and "3 7 5": the pair (7, 5) is the left pair of 5 and the right pair of 7.
    ids = layer.pair_ids(np.array([[7, 5, 9, 0], [3, 7, 5, 0]])).numpy()
    left, right = ids[..., 0], ids[..., 1]
    assert left[0, 1] == left[1, 2]  # (7, 5) on the left of 5, in both utterances
    assert right[0, 0] == right[1, 1]  # (7, 5) on the right of 7, in both
    assert left[0, 1] != right[0, 0]  # a pair on the left is not the same on the right
    assert right[0, 1] != right[1, 2]  # 5 then 9, against 5 at the end
    assert left[0, 0] != left[1, 1]  # 7 first, against 7 after 3
    assert ids.min() >= 1 and ids.max() <= 1 << 20


def test_pair_ids_spread_over_the_buckets():
    layer = NeighbourPairEmbedding(num_buckets=4096, output_dim=2)
    a, b = np.meshgrid(np.arange(2, 202), np.arange(2, 52))
    ids = layer.pair_ids(np.stack([a.ravel(), b.ravel()], axis=1)).numpy()[:, 1, 0]
    # 10,000 pairs into 4,096 buckets: a uniform hash fills about 1 - e^-2.44 of them.
    assert len(np.unique(ids)) / 4096 > 0.85


def test_pair_embedding_is_the_rows_of_both_pairs_and_zero_on_padding():
    layer = NeighbourPairEmbedding(num_buckets=50, output_dim=3)
    word_ids = np.array([[4, 6, 0], [9, 0, 0]])
    out = keras.ops.convert_to_numpy(layer(word_ids))
    table = keras.ops.convert_to_numpy(layer.embeddings)
    ids = layer.pair_ids(word_ids).numpy()
    np.testing.assert_allclose(
        out[0, 1], np.concatenate([table[ids[0, 1, 0]], table[ids[0, 1, 1]]])
    )
    np.testing.assert_array_equal(out[0, 2], 0.0)
    np.testing.assert_array_equal(out[1, 1:], 0.0)
    np.testing.assert_array_equal(layer.compute_mask(word_ids), word_ids > 0)


def test_pair_embedding_ignores_what_follows_the_padding():
    """An utterance padded in a batch gets what it gets alone."""
    layer = NeighbourPairEmbedding(num_buckets=50, output_dim=3)
    alone = keras.ops.convert_to_numpy(layer(np.array([[4, 6]])))
    padded = keras.ops.convert_to_numpy(layer(np.array([[4, 6, 0, 0], [1, 2, 3, 5]])))
    np.testing.assert_allclose(padded[0, :2], alone[0])


def trigram_cnn_reference(layer, trigram_ids):
    """The layer's formula in NumPy, word by word."""
    table = keras.ops.convert_to_numpy(layer.embeddings)
    kernel = keras.ops.convert_to_numpy(layer.kernel)
    bias = keras.ops.convert_to_numpy(layer.bias)
    width, _, filters = kernel.shape
    out = np.zeros(trigram_ids.shape[:-1] + (filters,))
    for index in np.ndindex(*trigram_ids.shape[:-1]):
        ids = trigram_ids[index]
        vectors = np.where((ids > 0)[:, None], table[ids], 0.0)
        padded = np.pad(vectors, ((width // 2, (width - 1) // 2), (0, 0)))
        features = np.tanh(
            np.stack(
                [np.einsum("wd,wdf->f", padded[i : i + width], kernel) for i in range(len(ids))]
            )
            + bias
        )
        if (ids > 0).any():
            out[index] = features[ids > 0].max(axis=0)
    return out


def test_trigram_cnn_matches_numpy_reference():
    rng = np.random.default_rng(0)
    trigram_ids = rng.integers(1, 30, size=(2, 3, 6))
    trigram_ids[0, 1, 4:] = 0  # a short word
    trigram_ids[1, 2] = 0  # padding
    layer = TrigramCNN(num_buckets=30, filters=5, embedding_dim=4)
    out = keras.ops.convert_to_numpy(layer(trigram_ids))
    np.testing.assert_allclose(out, trigram_cnn_reference(layer, trigram_ids), atol=1e-5)
    np.testing.assert_array_equal(out[1, 2], 0.0)


def test_trigram_cnn_sees_order_that_the_bag_does_not():
    forwards = np.array([[[3, 8, 11, 5, 0, 0]]])
    backwards = np.array([[[5, 11, 8, 3, 0, 0]]])
    bag = HashedWordEmbedding(num_buckets=20, output_dim=4)
    np.testing.assert_allclose(  # the same sum, added in another order
        keras.ops.convert_to_numpy(bag(forwards)),
        keras.ops.convert_to_numpy(bag(backwards)),
        atol=1e-6,
    )
    cnn = TrigramCNN(num_buckets=20, filters=4, embedding_dim=4)
    assert not np.allclose(
        keras.ops.convert_to_numpy(cnn(forwards)), keras.ops.convert_to_numpy(cnn(backwards))
    )


@pytest.mark.parametrize(
    "layer",
    [
        lambda: NeighbourPairEmbedding(num_buckets=10, output_dim=3, name="pairs"),
        lambda: TrigramCNN(num_buckets=10, filters=3, embedding_dim=2, width=5, name="cnn"),
    ],
)
def test_context_layer_config_round_trip(layer):
    layer = layer()
    clone = layer.__class__.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


@pytest.mark.parametrize("cls", [NeighbourPairEmbedding, TrigramCNN])
@pytest.mark.parametrize("value", [0, -1, 2.5, True])
def test_context_layer_invalid_sizes_raise(cls, value):
    with pytest.raises(ValueError, match="expected a positive integer"):
        cls(value, 4)


def test_tagger_has_the_context_layers_asked_for():
    sizes = {"num_tags": 4, "vocabulary_size": 30, "units": 8}
    plain = build_tagger(**sizes, char_filters=0, pair_buckets=0)
    names = {layer.name for layer in plain.layers}
    assert "trigram_cnn" not in names and "neighbour_pairs" not in names
    both = build_tagger(**sizes, char_filters=6, pair_buckets=64, pair_dim=5)
    assert both.get_layer("trigram_cnn").filters == 6
    pairs = both.get_layer("neighbour_pairs")
    assert (pairs.num_buckets, pairs.output_dim) == (64, 5)
    # The recurrent layer reads them: its input is wider by their widths.
    assert both.count_params() > plain.count_params() + 65 * 5


def test_config_passes_the_context_settings_to_the_tagger():
    config = TrainConfig(char_filters=7, pair_buckets=99, pair_dim=3).validate()
    options = tagger_options(config)
    assert (options["char_filters"], options["pair_buckets"], options["pair_dim"]) == (7, 99, 3)


@pytest.mark.parametrize("name, value", [("char_filters", -1), ("pair_buckets", 1.5)])
def test_config_refuses_bad_context_settings(name, value):
    from slotkeras.config import ConfigError

    with pytest.raises(ConfigError, match=name):
        TrainConfig(**{name: value}).validate()


@pytest.mark.slow  # over half a minute on 2 cores: .ci/run runs it after the default suite
def test_model_with_context_layers_loads_in_a_fresh_process(tmp_path):
    """train.py, then evaluate.py and predict in processes of their own: the layers are
    registered by importing the package, not by having built the model."""
    from conftest import explain, run

    folder = tmp_path / "model"
    flags = ["--epochs", "1", "--units", "8", "--char-filters", "4", "--pair-buckets", "64"]
    result = run(["train.py", "--output", folder, "--verbose", "0", *flags])
    assert result.returncode == 0, explain(result)[-3000:]
    config = json.loads((folder / "config.json").read_text())
    assert (config["char_filters"], config["pair_buckets"]) == (4, 64)
    report = tmp_path / "report.json"
    result = run(["evaluate.py", "--model", folder, "--report-json", report])
    assert result.returncode == 0, explain(result)[-3000:]
    assert json.loads(report.read_text())["num_utterances"] > 0
    result = run(["-m", "slotkeras", "predict", "--model", folder, "Leave Taipei on Friday?"])
    assert result.returncode == 0, explain(result)[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1])["text"] == "Leave Taipei on Friday?"
