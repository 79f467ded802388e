"""Word encodings (1-of-N with Other, letter-trigram hashing) and the tf.data pipeline."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from slotkeras.datasets import LABEL_PAD, make_dataset, pad_tokens
from slotkeras.layers.letter_trigram_hashing import LetterTrigramHashing
from slotkeras.layers.token_featurizer import OTHER_INDEX, PAD_INDEX, TokenFeaturizer
from slotkeras.tag_schemes import iob_spans, output_tag, to_bioes
from slotkeras.vocabularies import LabelVocabulary, build_vocabulary

TOKENS = [
    ["leave", "taipei", "on", "november", "2nd"],
    ["arrive", "Taipei"],
    ["台北", "到", "東京", "😀", "x"],
]


@pytest.fixture(scope="module")
def featurizer():
    vocab = build_vocabulary(TOKENS[:2])
    return TokenFeaturizer(vocab, num_buckets=997, max_trigrams=8)


def test_trigrams_of_a_word_are_the_lectures():
    layer = LetterTrigramHashing(num_buckets=1 << 20, max_trigrams=6)
    ids = layer(tf.constant([["word"]])).numpy()[0, 0]
    expected = tf.strings.to_hash_bucket_fast(["#wo", "wor", "ord", "rd#"], 1 << 20).numpy() + 1
    np.testing.assert_array_equal(ids, list(expected) + [0, 0])


def test_padding_gives_no_trigrams_and_long_words_are_cut():
    layer = LetterTrigramHashing(num_buckets=100, max_trigrams=4)
    ids = layer(tf.constant([["", "a", "abcdefghij"]])).numpy()[0]
    assert (ids[0] == 0).all()
    assert (ids[1][:1] > 0).all() and (ids[1][1:] == 0).all()  # "#a#" is one trigram
    assert (ids[2] > 0).all() and (ids[2] <= 100).all()


def test_unseen_word_maps_to_other_and_padding_to_zero(featurizer):
    out = featurizer(tf.constant([["taipei", "zanzibar", ""]]))
    word_ids = out["word_ids"].numpy()[0]
    assert word_ids[0] >= 2
    assert word_ids[1] == OTHER_INDEX
    assert word_ids[2] == PAD_INDEX
    assert featurizer.vocabulary_size == len(featurizer.vocabulary) + 2


def test_lowercasing_applies_to_lookup_and_hashing(featurizer):
    out = featurizer(tf.constant([["Taipei", "taipei"]]))
    assert out["word_ids"].numpy()[0, 0] == out["word_ids"].numpy()[0, 1]
    np.testing.assert_array_equal(out["trigram_ids"][0, 0], out["trigram_ids"][0, 1])
    cased = TokenFeaturizer(["Taipei"], lowercase=False, num_buckets=97)
    ids = cased(tf.constant([["Taipei", "taipei"]]))["word_ids"].numpy()[0]
    assert ids[0] == 2 and ids[1] == OTHER_INDEX


def expected_ids(trigrams, num_buckets, max_trigrams):
    """Bucket ids (from 1) of the given trigrams, cut or padded to `max_trigrams`."""
    ids = [int(i) + 1 for i in tf.strings.to_hash_bucket_fast(trigrams, num_buckets).numpy()]
    return (ids + [0] * max_trigrams)[:max_trigrams]


def character_trigrams(word):
    marked = f"#{word.lower()}#"  # a Python str indexes code points
    return [marked[i : i + 3] for i in range(len(marked) - 2)]


def byte_trigrams(word):
    marked = f"#{word.lower()}#".encode()
    return [marked[i : i + 3] for i in range(len(marked) - 2)]


def test_unicode_trigrams_are_of_characters_not_bytes():
    words = ["台北", "到", "東京", "😀", "Naïve", "taipei"]
    layer = LetterTrigramHashing(num_buckets=1 << 20, max_trigrams=8)
    ids = layer(tf.constant([words])).numpy()[0]
    for word, row in zip(words, ids, strict=True):
        want = expected_ids(character_trigrams(word), 1 << 20, 8)
        assert row.tolist() == want, word
        if not word.isascii():
            # What hashing the UTF-8 bytes would give: other trigrams, more of them.
            assert expected_ids(byte_trigrams(word), 1 << 20, 8) != want, word
    assert character_trigrams("台北") == ["#台北", "台北#"]


def test_chinese_and_emoji_hash_without_error(featurizer):
    out = featurizer(tf.constant(pad_tokens(TOKENS).astype(str)))
    trigrams = out["trigram_ids"].numpy()[2]
    for word, row in zip(TOKENS[2], trigrams, strict=True):
        assert row.tolist() == expected_ids(character_trigrams(word), 997, 8), word
    assert (out["word_ids"].numpy()[2] == OTHER_INDEX).all()
    # Invalid UTF-8 bytes do not crash the graph either.
    bad = featurizer(tf.constant([[b"\xff\xfeok"]]))
    assert bad["trigram_ids"].numpy()[0, 0, 0] > 0


def test_same_output_direct_tf_data_map_and_batched_map(featurizer):
    padded = tf.constant(pad_tokens(TOKENS).astype(str))
    direct = featurizer(padded)
    mapped = next(iter(tf.data.Dataset.from_tensors(padded).map(featurizer)))
    rows = [
        row
        for batch in tf.data.Dataset.from_tensor_slices(padded).batch(2).map(featurizer)
        for row in zip(batch["word_ids"].numpy(), batch["trigram_ids"].numpy())
    ]
    for key in ("word_ids", "trigram_ids"):
        np.testing.assert_array_equal(direct[key], mapped[key])
    for i, (words, trigrams) in enumerate(rows):
        np.testing.assert_array_equal(direct["word_ids"][i], words)
        np.testing.assert_array_equal(direct["trigram_ids"][i], trigrams)


def test_hashing_is_identical_across_processes():
    code = (
        "import json, tensorflow as tf\n"
        "from slotkeras.layers import LetterTrigramHashing\n"
        "ids = LetterTrigramHashing(num_buckets=50000, max_trigrams=8)("
        "tf.constant([['taipei', '台北', '😀', 'November']]))\n"
        "print(json.dumps(ids.numpy().tolist()))\n"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": str(seed), "TF_CPP_MIN_LOG_LEVEL": "3", "PATH": ""},
        ).stdout
        for seed in (1, 2)
    ]
    assert json.loads(runs[0]) == json.loads(runs[1])
    assert any(v > 0 for v in np.ravel(json.loads(runs[0])))


def test_featurizer_config_round_trip(featurizer):
    clone = TokenFeaturizer.from_config(featurizer.get_config())
    padded = tf.constant(pad_tokens(TOKENS).astype(str))
    for key in ("word_ids", "trigram_ids"):
        np.testing.assert_array_equal(featurizer(padded)[key], clone(padded)[key])


def test_featurizer_inside_a_saved_keras_model(tmp_path, featurizer):
    tokens = keras.Input(shape=(None,), dtype="string")
    model = keras.Model(tokens, featurizer(tokens))
    model.save(tmp_path / "f.keras")
    loaded = keras.models.load_model(tmp_path / "f.keras")
    padded = tf.constant(pad_tokens(TOKENS).astype(str))
    np.testing.assert_array_equal(model(padded)["trigram_ids"], loaded(padded)["trigram_ids"])


def test_build_vocabulary_counts_and_limits():
    lists = [["a", "b", "A"], ["b", "c"], ["b"]]
    assert build_vocabulary(lists) == ["b", "a", "c"]
    assert build_vocabulary(lists, min_count=2) == ["b", "a"]
    assert build_vocabulary(lists, max_size=1) == ["b"]
    assert build_vocabulary(lists, lowercase=False) == ["b", "A", "a", "c"]
    with pytest.raises(ValueError, match="`min_count`"):
        build_vocabulary(lists, min_count=0)


def test_label_vocabulary_puts_o_first_and_is_sorted():
    vocab = LabelVocabulary.from_tags([["B-x", "O", "I-x"], ["B-a"]])
    assert vocab.labels == ["O", "B-a", "B-x", "I-x"]
    assert [vocab.labels[i] for i in vocab.encode(["I-x", "O"])] == ["I-x", "O"]
    assert vocab.encode(["B-unseen"], unknown=0) == [0]


def test_bioes_tags_give_back_the_same_spans_as_bio():
    assert to_bioes(["O", "B-city", "I-city", "I-city", "I-date", "O"]) == [
        "O", "B-city", "I-city", "E-city", "S-date", "O"
    ]  # fmt: skip
    # Every BIO sequence, ill-formed ones too (an I- opening a span, a B- after a B-):
    # its spans, read with conlleval semantics, survive the round trip.
    rng = np.random.default_rng(0)
    alphabet = ["O", "B-a", "I-a", "B-b", "I-b"]
    for _ in range(500):
        tags = [alphabet[i] for i in rng.integers(0, len(alphabet), rng.integers(0, 9))]
        bioes = to_bioes(tags)
        assert len(bioes) == len(tags)
        assert iob_spans([output_tag(t) for t in bioes]) == iob_spans(tags), tags
        for _, start, end in iob_spans(tags):
            assert bioes[start][0] == ("S" if end - start == 1 else "B")
            assert bioes[end - 1][0] == ("S" if end - start == 1 else "E")
    assert [output_tag(t) for t in ["O", "B-x", "I-x", "E-x", "S-x"]] == [
        "O", "B-x", "I-x", "I-x", "B-x"
    ]  # fmt: skip


def test_dataset_batches_by_length_pads_and_keeps_every_utterance():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 40, size=300)
    words = [np.arange(1, n + 1, dtype=np.int32) + 1000 * i for i, n in enumerate(lengths)]
    trigrams = [np.ones((n, 4), np.int32) for n in lengths]
    slots = [np.full(n, i % 7, np.int32) for i, n in enumerate(lengths)]
    ds = make_dataset(
        words, trigrams, slots, list(range(300)), batch_size=16, shuffle=True, max_trigrams=4
    )
    seen = []
    batches = 0
    for inputs, targets in ds:
        batches += 1
        word_ids = inputs["word_ids"].numpy()
        real = word_ids > 0
        lens = real.sum(1)
        assert lens.max() - lens.min() <= 8  # one length bucket per batch
        assert (targets["slots"].numpy()[~real] == LABEL_PAD).all()
        assert (inputs["trigram_ids"].numpy()[~real] == 0).all()
        seen.extend(targets["intent"].numpy().tolist())
    assert sorted(seen) == list(range(300))
    assert batches == ds.cardinality().numpy()


def test_dataset_without_shuffle_keeps_order():
    words = [np.array([5, 6], np.int32), np.array([7], np.int32), np.array([8, 9, 10], np.int32)]
    trigrams = [np.ones((len(w), 2), np.int32) for w in words]
    batch = next(iter(make_dataset(words, trigrams, batch_size=8, max_trigrams=2)))
    np.testing.assert_array_equal(batch["word_ids"], [[5, 6, 0], [7, 0, 0], [8, 9, 10]])
