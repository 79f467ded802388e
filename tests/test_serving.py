"""The SavedModel as servers load it: TensorFlow Serving and KServe restore its
variables in a session (as `saved_model_cli run` does); TF2 code uses
`tf.saved_model.load`. All must tag as `SlotFiller.predict` (evaluate.py's path)."""

import itertools
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT

from slotkeras import data, models
from slotkeras.decoding import find_crf
from slotkeras.layers.token_featurizer import TokenFeaturizer
from slotkeras.saved_model_export import export_saved_model
from slotkeras.slot_filler import SlotFiller
from slotkeras.tokenizer import Tokenizer
from slotkeras.vocabularies import LabelVocabulary, build_vocabulary

KINDS = ("feedforward", "elman", "jordan", "gru", "lstm", "peephole_lstm")
TRAIN = data.read_utterances(ROOT / "data" / "train.csv")
HELD_OUT = data.read_utterances(ROOT / "data" / "test.csv")


def tiny_filler(kind, bidirectional, output, seed=0):
    """An untrained tagger over the bundled corpus's labels, with random weights
    (the CRF's transitions too), so that its tags vary from token to token."""
    keras.utils.set_random_seed(seed)
    vocabulary = build_vocabulary(u.tokens for u in TRAIN)
    featurizer = TokenFeaturizer(vocabulary, num_buckets=512, name="token_featurizer")
    tags = LabelVocabulary.from_tags(u.tags for u in TRAIN).labels
    intents = sorted({u.intent for u in TRAIN})
    tagger = models.build_tagger(
        num_tags=len(tags),
        vocabulary_size=featurizer.vocabulary_size,
        num_intents=len(intents),
        model=kind,
        bidirectional=bidirectional,
        units=8,
        embedding_dim=8,
        hash_buckets=512,
        hash_dim=8,
        output=output,
        slot_intent_feedback=True,
        seed=seed,
    )
    crf = find_crf(tagger)
    if crf is not None:
        for weight in crf.weights:
            weight.assign(np.random.default_rng(seed).normal(0, 1, weight.shape))
    model = models.build_end_to_end(featurizer, tagger)
    config = {"tokenizer": Tokenizer.fit(u.tokens for u in TRAIN).get_config()}
    return SlotFiller(model, tags, intents, config)


def session_outputs(path, texts):
    """The `serving_default` signature run in a TF1 graph session that restores the
    variables through the SavedModel's saver: TensorFlow Serving's way."""
    with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as session:
        meta = tf.compat.v1.saved_model.loader.load(session, ["serve"], str(path))
        signature = meta.signature_def["serving_default"]
        fetches = {key: info.name for key, info in signature.outputs.items()}
        return session.run(fetches, {signature.inputs["text"].name: texts})


def rows(outputs, key):
    """Per utterance, the non-padding entries of a 2-D output."""
    tokens = outputs["tokens"]
    return [
        [v.decode() if isinstance(v, bytes) else v for v in outputs[key][i][tokens[i] != b""]]
        for i in range(len(tokens))
    ]


def saved_model_cli(path, texts, outdir):
    """`saved_model_cli run ... --outdir`, TensorFlow's own command."""
    command = [
        str(Path(sys.executable).with_name("saved_model_cli")),
        "run",
        "--dir", str(path),
        "--tag_set", "serve",
        "--signature_def", "serving_default",
        "--input_exprs", f"text={list(texts)!r}",
        "--outdir", str(outdir),
    ]  # fmt: skip
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return {p.stem: np.load(p, allow_pickle=True) for p in Path(outdir).glob("*.npy")}


def check_served_like_evaluate(filler, path, via_cli, tmp_path):
    texts = [" ".join(u.tokens) for u in HELD_OUT]
    expected = filler.predict([u.tokens for u in HELD_OUT])
    expected_tags = [p.tags for p in expected]
    loaded = tf.saved_model.load(str(path)).signatures["serving_default"]
    served = {k: v.numpy() for k, v in loaded(tf.constant(texts)).items()}
    session = session_outputs(path, texts)
    runs = {"tf.saved_model.load": served, "session": session}
    if via_cli:
        runs["saved_model_cli"] = saved_model_cli(path, texts, tmp_path / "cli")
    for name, out in runs.items():
        assert rows(out, "tokens") == [list(u.tokens) for u in HELD_OUT], name
        assert rows(out, "tags") == expected_tags, name
        assert [s.decode() for s in out["intent"]] == [p.intent for p in expected], name
        probabilities = rows(out, "tag_probabilities")
        for got, prediction in zip(probabilities, expected):
            np.testing.assert_allclose(got, prediction.tag_probabilities, rtol=1e-4, atol=1e-6)
        starts, ends = rows(out, "starts"), rows(out, "ends")
        for text, s, e, tokens in zip(texts, starts, ends, rows(out, "tokens")):
            assert [text[a:b] for a, b in zip(s, e)] == tokens
    # Not a degenerate check: the random tagger's tags vary.
    assert len({tag for tags in expected_tags for tag in tags}) > 5


COMBINATIONS = list(itertools.product(KINDS, (False, True), ("softmax", "crf")))
# The default run: every kind once, the directions and output layers alternating
# (both of each across the kinds), plus two through saved_model_cli; the slow run
# takes all combinations through saved_model_cli.
DEFAULT_RUN = [
    (kind, i % 2 == 1, ("softmax", "crf")[(i // 2 + i) % 2]) for i, kind in enumerate(KINDS)
]
CLI_BY_DEFAULT = [("lstm", True, "crf"), ("feedforward", False, "softmax")]


@pytest.mark.parametrize(
    "kind, bidirectional, output", [c for c in DEFAULT_RUN if c not in CLI_BY_DEFAULT]
)
def test_every_kind_serves_in_a_session_as_evaluate_tags(kind, bidirectional, output, tmp_path):
    filler = tiny_filler(kind, bidirectional, output)
    export_saved_model(filler, tmp_path / "saved_model")
    check_served_like_evaluate(filler, tmp_path / "saved_model", False, tmp_path)


@pytest.mark.parametrize("kind, bidirectional, output", CLI_BY_DEFAULT)
def test_saved_model_cli_runs_the_export(kind, bidirectional, output, tmp_path):
    filler = tiny_filler(kind, bidirectional, output)
    export_saved_model(filler, tmp_path / "saved_model")
    check_served_like_evaluate(filler, tmp_path / "saved_model", True, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("kind, bidirectional, output", COMBINATIONS)
def test_saved_model_cli_runs_every_kind(kind, bidirectional, output, tmp_path):
    filler = tiny_filler(kind, bidirectional, output)
    export_saved_model(filler, tmp_path / "saved_model")
    check_served_like_evaluate(filler, tmp_path / "saved_model", True, tmp_path)


def test_signature_has_the_designed_outputs(tmp_path):
    filler = tiny_filler("lstm", True, "crf")
    export_saved_model(filler, tmp_path / "saved_model")
    loaded = tf.saved_model.load(str(tmp_path / "saved_model"))
    assert {"serve", "serving_default"} <= set(loaded.signatures)
    for name in ("serve", "serving_default"):
        signature = loaded.signatures[name]
        assert set(signature.structured_input_signature[1]) == {"text"}
        assert set(signature.structured_outputs) == {
            "tokens", "tags", "starts", "ends", "tag_probabilities", "intent",
            "intent_probability",
        }  # fmt: skip
    out = loaded.signatures["serve"](tf.constant(["Leave Boston on November 2nd?", ""]))
    assert out["tokens"].numpy()[0, -1] == b"?"
    assert out["tags"].numpy()[1].tolist() == [b""] * out["tags"].shape[1]
    probabilities = out["tag_probabilities"].numpy()
    assert np.all(probabilities[0, :6] > 0) and np.all(probabilities[0, :6] <= 1)
    assert np.all(probabilities[1] == 0)
