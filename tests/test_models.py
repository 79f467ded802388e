"""The model factory: every kind, direction and encoding builds, masks, saves and reloads."""

import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT, explain, run

from slotkeras import models
from slotkeras.datasets import pad_tokens
from slotkeras.layers.token_featurizer import TokenFeaturizer
from slotkeras.vocabularies import LabelVocabulary, build_vocabulary

MAX_TRIGRAMS = 6
SMALL = dict(
    units=5,
    embedding_dim=4,
    hash_dim=3,
    hash_buckets=50,
    max_trigrams=MAX_TRIGRAMS,
    dropout=0.0,
    output="softmax",
    slot_intent_feedback=False,
)
GRID = [
    (kind, bidirectional, encoding)
    for kind in models.KINDS
    for bidirectional in (False, True)
    for encoding in models.ENCODINGS
]


def small_tagger(kind, bidirectional, encoding, **overrides):
    options = dict(SMALL, num_tags=7, vocabulary_size=20, num_intents=3, layers=2)
    options.update(overrides)
    keras.utils.set_random_seed(0)
    return models.build_tagger(
        model=kind, bidirectional=bidirectional, encoding=encoding, **options
    )


def random_inputs(lengths, seed=0):
    rng = np.random.default_rng(seed)
    width = max(lengths)
    word_ids = np.zeros((len(lengths), width), np.int32)
    trigram_ids = np.zeros((len(lengths), width, MAX_TRIGRAMS), np.int32)
    for i, n in enumerate(lengths):
        word_ids[i, :n] = rng.integers(1, 20, n)
        trigram_ids[i, :n, :3] = rng.integers(1, 51, (n, 3))
    return {"word_ids": word_ids, "trigram_ids": trigram_ids}


def test_every_layer_is_named_and_outputs_have_the_right_shapes():
    tagger = small_tagger("lstm", True, "both")
    out = tagger(random_inputs([4, 2]))
    assert out["slots"].shape == (2, 4, 7)
    assert out["intent"].shape == (2, 3)
    names = [layer.name for layer in tagger.layers]
    assert len(names) == len(set(names))
    assert {
        "word_embedding",
        "trigram_embedding",
        "bi_lstm_1",
        "bi_lstm_2",
        "slots",
        "intent",
    } <= set(names)
    np.testing.assert_allclose(out["slots"].numpy().sum(-1), 1.0, rtol=1e-5)


def test_no_intent_head_without_intents_and_crf_output():
    tagger = small_tagger("gru", False, "hash", num_intents=0, output="crf")
    out = tagger(random_inputs([3]))
    assert set(out) == {"slots"}
    assert any(type(layer).__name__ == "CRF" for layer in tagger.layers)


def test_defaults_are_those_of_a_run_and_feedforward_has_no_memory_by_default():
    from slotkeras.config import TrainConfig

    def layer_types(**kwargs):
        tagger = models.build_tagger(num_tags=4, vocabulary_size=10, num_intents=2, **kwargs)
        return {layer.name: layer for layer in tagger.layers}

    default = TrainConfig()
    layers = layer_types()
    assert type(layers["slots"]).__name__ == "CRF" and default.output_layer == "crf"
    assert "utterance_context" in layers and default.slot_intent_feedback
    assert layers["word_dropout"].rate == default.dropout
    assert layers["bi_lstm_1"].forward_layer.units == default.units
    baseline = layer_types(model="feedforward")
    assert type(baseline["slots"]).__name__ == "Dense"  # per-word softmax, no CRF
    assert "utterance_context" not in baseline
    assert TrainConfig(model="feedforward").output_layer == "softmax"
    assert not TrainConfig(model="feedforward").slot_intent_feedback
    asked = layer_types(model="feedforward", output="crf", slot_intent_feedback=True)
    assert type(asked["slots"]).__name__ == "CRF" and "utterance_context" in asked
    explicit = TrainConfig(model="feedforward", output_layer="crf", slot_intent_feedback=True)
    assert (explicit.output_layer, explicit.slot_intent_feedback) == ("crf", True)


@pytest.mark.parametrize(
    "argument, value",
    [
        ("model", "transformer"),
        ("encoding", "glove"),
        ("layers", 0),
        ("units", -3),
        ("dropout", 1.5),
    ],
)
def test_invalid_arguments_name_the_argument(argument, value):
    with pytest.raises(ValueError, match=f"`{argument}`.*{value}"):
        small_tagger("lstm", True, "both", **{argument: value}) if argument not in (
            "model",
            "encoding",
        ) else small_tagger(
            value if argument == "model" else "lstm",
            True,
            value if argument == "encoding" else "both",
        )


@pytest.mark.parametrize("kind", models.KINDS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_masking_same_outputs_alone_and_in_a_padded_batch(kind, bidirectional):
    tagger = small_tagger(kind, bidirectional, "both")
    batch = random_inputs([3, 7, 5], seed=1)
    alone = {key: value[:1, :3] for key, value in batch.items()}
    together = tagger(batch)
    single = tagger(alone)
    np.testing.assert_allclose(together["slots"][0, :3], single["slots"][0], atol=1e-5)
    np.testing.assert_allclose(together["intent"][0], single["intent"][0], atol=1e-5)


def test_feedforward_cannot_tell_arrive_from_leave():
    """The lecture's point: without memory, "taipei" gets the same output in both."""
    sentences = [
        ["arrive", "taipei", "on", "november", "2nd"],
        ["leave", "taipei", "on", "november", "2nd"],
    ]
    featurizer = TokenFeaturizer(build_vocabulary(sentences), num_buckets=50, max_trigrams=6)
    inputs = featurizer(tf.constant(sentences))
    for encoding in models.ENCODINGS:
        tagger = small_tagger(
            "feedforward",
            False,
            encoding,
            num_intents=0,
            vocabulary_size=featurizer.vocabulary_size,
        )
        slots = tagger(inputs)["slots"].numpy()
        np.testing.assert_array_equal(slots[0, 1], slots[1, 1])
        assert not np.allclose(slots[0, 0], slots[1, 0])  # the verbs themselves differ
        # With memory the same word gets a different output.
        lstm = small_tagger(
            "lstm", False, encoding, num_intents=0, vocabulary_size=featurizer.vocabulary_size
        )
        slots = lstm(inputs)["slots"].numpy()
        assert not np.allclose(slots[0, 1], slots[1, 1])


def test_lstm_layer_has_four_times_the_weights_of_simple_rnn():
    for kind, factor in (("lstm", 4), ("gru", 3), ("peephole_lstm", 4)):
        base = models.recurrent_layer("elman", 16, "base")
        other = models.recurrent_layer(kind, 16, "other")
        base.build((None, None, 10))
        other.build((None, None, 10))
        extra = 3 * 16 if kind == "peephole_lstm" else 0  # the peephole vectors
        extra += 3 * 16 if kind == "gru" else 0  # reset_after: a second bias
        assert other.count_params() == factor * base.count_params() + extra


LOAD_AND_PREDICT = """
import sys, numpy as np, keras
data = np.load(sys.argv[1])
inputs = {"word_ids": data["word_ids"], "trigram_ids": data["trigram_ids"]}
out = {}
for i in range(int(sys.argv[2])):
    model = keras.models.load_model(f"{sys.argv[3]}/m{i}.keras")
    pred = model(inputs)
    out[f"slots{i}"] = np.asarray(pred["slots"])
    out[f"intent{i}"] = np.asarray(pred["intent"])
np.savez(sys.argv[4], **out)
"""


def test_save_and_load_in_a_fresh_process_every_kind_direction_encoding(tmp_path):
    inputs = random_inputs([4, 6, 1], seed=2)
    np.savez(tmp_path / "inputs.npz", **inputs)
    expected = {}
    for i, (kind, bidirectional, encoding) in enumerate(GRID):
        tagger = small_tagger(kind, bidirectional, encoding, layers=1)
        out = tagger(inputs)
        expected[i] = (out["slots"].numpy(), out["intent"].numpy())
        tagger.save(tmp_path / f"m{i}.keras")
    script = tmp_path / "load.py"
    script.write_text("import slotkeras.layers, slotkeras.models\n" + LOAD_AND_PREDICT)
    subprocess.run(
        [
            sys.executable,
            str(script),
            str(tmp_path / "inputs.npz"),
            str(len(GRID)),
            str(tmp_path),
            str(tmp_path / "out.npz"),
        ],
        check=True,
        capture_output=True,
        env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": ""},
    )
    got = np.load(tmp_path / "out.npz")
    for i, combo in enumerate(GRID):
        np.testing.assert_array_equal(got[f"slots{i}"], expected[i][0], err_msg=str(combo))
        np.testing.assert_array_equal(got[f"intent{i}"], expected[i][1], err_msg=str(combo))


@pytest.mark.parametrize("kind", models.KINDS)
def test_every_kind_trains_on_the_bundled_corpus_for_an_epoch(kind, bundled_sample):
    featurizer, inputs, targets = bundled_sample
    tagger = small_tagger(
        kind,
        True,
        "both",
        vocabulary_size=featurizer.vocabulary_size,
        num_tags=int(targets["slots"].max()) + 1,
        num_intents=int(targets["intent"].max()) + 1,
        units=8,
        layers=1,
    )
    tagger.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss={
            "slots": keras.losses.SparseCategoricalCrossentropy(ignore_class=-1),
            "intent": keras.losses.SparseCategoricalCrossentropy(),
        },
    )
    history = tagger.fit(inputs, targets, epochs=2, batch_size=64, verbose=0)
    losses = history.history["loss"]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]


@pytest.fixture(scope="module")
def bundled_sample():
    from slotkeras.data import read_utterances

    utterances = read_utterances("data/train.csv")[:200]
    featurizer = TokenFeaturizer(
        build_vocabulary(u.tokens for u in utterances),
        num_buckets=50,
        max_trigrams=MAX_TRIGRAMS,
    )
    tags = LabelVocabulary.from_tags(u.tags for u in utterances)
    intents = LabelVocabulary.from_labels(u.intent for u in utterances)
    inputs = featurizer(tf.constant(pad_tokens([u.tokens for u in utterances]).astype(str)))
    slots = np.full(inputs["word_ids"].shape, -1, np.int32)
    for i, u in enumerate(utterances):
        slots[i, : len(u.tags)] = tags.encode(u.tags)
    targets = {"slots": slots, "intent": np.array(intents.encode([u.intent for u in utterances]))}
    return featurizer, {k: v.numpy() for k, v in inputs.items()}, targets


LEAVE_ARRIVE = [  # the lecture's pair, with a city that no training utterance has
    ["leave", "reykjavik", "on", "november", "2nd"],
    ["arrive", "reykjavik", "on", "november", "2nd"],
]


def _train_as_a_user(tmp_path, name, *flags):
    from slotkeras.slot_filler import SlotFiller

    folder = tmp_path / name
    # A few epochs of a full run (which stops early after a dozen or more): with the
    # intent loss weighted 10, the BiLSTM tells the verbs apart from the fourth.
    common = ["--epochs", "5", "--verbose", "0", "--no-export", "--output", folder]
    result = run(["train.py", *common, *flags])
    assert result.returncode == 0, explain(result)
    return SlotFiller.load(folder)


@pytest.mark.slow  # over half a minute on 2 cores: .ci/run runs it after the default suite
def test_train_py_feedforward_is_the_lecture_baseline_and_the_bilstm_is_not(tmp_path):
    """`train.py --model feedforward` gives the unseen city the same slot distribution
    after "leave" as after "arrive": it sees one word at a time. The BiLSTM, trained
    with the same flags, tells the two apart."""
    text = "\n".join(" ".join(tokens) for tokens in LEAVE_ARRIVE)
    assert "reykjavik" not in (ROOT / "data" / "train.csv").read_text(encoding="utf-8"), text

    baseline = _train_as_a_user(tmp_path, "feedforward", "--model", "feedforward")
    slots = baseline.model(tf.constant(LEAVE_ARRIVE))["slots"].numpy()
    np.testing.assert_allclose(slots[0, 1], slots[1, 1], rtol=0, atol=1e-6)
    # The verbs differ (both O, but not to the millionth), so the model is no constant;
    # compared as log probabilities, which a confident softmax does not round to 1 and 0
    # (a probability that underflowed to 0 in both is floored alike, not compared as nan).
    log_p = np.log(np.maximum(slots, np.finfo(slots.dtype).tiny))
    assert np.abs(log_p[0, 0] - log_p[1, 0]).max() > 1e-4
    assert (baseline.config["output_layer"], baseline.config["slot_intent_feedback"]) == (
        "softmax",
        False,
    )

    bilstm = _train_as_a_user(tmp_path, "bilstm", "--model", "lstm", "--bidirectional")
    leave, arrive = (p.tags[1] for p in bilstm.predict(LEAVE_ARRIVE))
    assert (leave, arrive) == ("B-fromloc.city_name", "B-toloc.city_name")


@pytest.mark.parametrize("variational", [False, True])
def test_variational_dropout_drops_the_same_units_at_every_word(variational):
    tagger = models.build_tagger(
        num_tags=4, vocabulary_size=10, dropout=0.5, variational_dropout=variational, seed=3
    )
    layer = tagger.get_layer("word_dropout")
    ones = np.ones((2, 7, 64), "float32")
    kept = keras.ops.convert_to_numpy(layer(ones, training=True)) > 0
    # One mask per utterance: every word keeps the same units; per word, they differ.
    same_at_every_word = bool((kept == kept[:, :1]).all())
    assert same_at_every_word == variational
    assert 0.3 < kept.mean() < 0.7
    assert np.array_equal(keras.ops.convert_to_numpy(layer(ones, training=False)), ones)
    assert tagger.get_layer("dropout_1").noise_shape == layer.noise_shape
