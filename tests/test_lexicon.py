"""Lexicon matches: each token of a word the lexicon has is marked with its role in
that word (begins, continues, ends; by length and by the word's tag), in the unused
slots of its trigram ids, the same in the graph as after saving and loading."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from slotkeras import lexicon
from slotkeras.config import ConfigError
from slotkeras.layers.token_featurizer import TokenFeaturizer

WORDS = ["中国", "中国人", "人民大学", "大学"]
TAGS = ["ns", "n", "nt", ""]
BUCKETS = 1 << 20  # few enough collisions that each expected id is one role


def role_ids(*roles):
    """The ids a token's roles hash to."""
    strings = tf.constant(["\x1f" + role for role in roles])
    return set((tf.strings.to_hash_bucket_fast(strings, BUCKETS) + 1).numpy().tolist())


def trigram_ids(featurizer, tokens):
    return featurizer(tf.constant([tokens]))["trigram_ids"].numpy()[0]


def test_each_token_gets_its_roles_in_the_words_that_cover_it():
    plain = TokenFeaturizer(num_buckets=BUCKETS, max_trigrams=12)
    marked = TokenFeaturizer(num_buckets=BUCKETS, max_trigrams=12, lexicon=WORDS, lexicon_tags=TAGS)
    tokens = list("中国人民大学毕业") + [""]
    before, after = trigram_ids(plain, tokens), trigram_ids(marked, tokens)
    expected = [
        role_ids("B2", "B3", "bns", "bn"),  # 中: begins 中国 and 中国人
        role_ids("E2", "M3", "ens", "mn"),  # 国
        role_ids("E3", "B4", "en", "bnt"),  # 人: ends 中国人, begins 人民大学
        role_ids("M4", "mnt"),  # 民
        role_ids("M4", "B2", "mnt"),  # 大: 大学 has no tag, so no tag role
        role_ids("E4", "E2", "ent"),  # 学
        set(),  # 毕
        set(),  # 业
        set(),  # padding
    ]
    for t, roles in enumerate(expected):
        trigrams = [i for i in before[t] if i]
        # The token's own trigrams come first and stay; its roles fill the slots after.
        assert list(after[t][: len(trigrams)]) == trigrams
        assert set(after[t][len(trigrams) :]) - {0} == roles, t
        assert np.count_nonzero(after[t]) == len(trigrams) + len(roles)


def test_no_lexicon_and_no_match_leave_the_trigrams_alone():
    tokens = [list("我要去北京"), list("机票") + ["", "", ""]]
    plain = TokenFeaturizer(num_buckets=BUCKETS)(tf.constant(tokens))["trigram_ids"]
    marked = TokenFeaturizer(num_buckets=BUCKETS, lexicon=["上海", "东京"])
    np.testing.assert_array_equal(marked(tf.constant(tokens))["trigram_ids"], plain)


def test_matches_do_not_cross_padding_and_keep_the_width():
    featurizer = TokenFeaturizer(num_buckets=BUCKETS, max_trigrams=3, lexicon=["中国人"])
    out = featurizer(tf.constant([["中", "国", ""], ["中", "国", "人"]]))["trigram_ids"]
    assert out.shape == (2, 3, 3)
    assert np.count_nonzero(out[0]) == 2  # "中国" + padding spells no word
    assert np.count_nonzero(out[1]) == 6  # each character: its trigram and one role


def test_the_lexicon_survives_saving_and_loading(tmp_path):
    featurizer = TokenFeaturizer(["中"], lexicon=WORDS, lexicon_tags=TAGS, name="featurizer")
    tokens = keras.Input(shape=(None,), dtype="string")
    model = keras.Model(tokens, featurizer(tokens))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    batch = tf.constant([list("中国人民大学")])
    np.testing.assert_array_equal(loaded(batch)["trigram_ids"], model(batch)["trigram_ids"])


def test_auto_takes_jiebas_dictionary_for_chinese_characters_only():
    chinese = [list("我在中国人民大学读书")]
    english = [["fly", "to", "boston"]]
    words = dict(lexicon.lexicon_for("auto", chinese))
    assert len(words) > 100_000 and words["中国"] == "ns"  # jieba: a place name
    assert "中国人民大学" not in words  # longer than MAX_WORD_LENGTH
    assert all(2 <= len(w) <= lexicon.MAX_WORD_LENGTH for w in words)
    assert lexicon.lexicon_for("auto", english) == []
    assert lexicon.lexicon_for("none", chinese) == []


def test_a_users_word_list_and_its_errors(tmp_path):
    good = tmp_path / "words.txt"
    good.write_text("\ufeff云计算 10 n\nSlotKeras\n\n单\n云计算\nAI芯片\n", encoding="utf-8")
    # Each word once, lower-cased; one character, or more than MAX_WORD_LENGTH: none.
    assert lexicon.lexicon_for(str(good), []) == [("云计算", "n"), ("ai芯片", "")]
    bad = tmp_path / "bad.txt"
    bad.write_bytes("云计算\n".encode() + b"\xff\xfe\n")
    with pytest.raises(ConfigError, match=r"bad.txt, line 2: .*not UTF-8"):
        lexicon.lexicon_for(str(bad), [])
    with pytest.raises(ConfigError, match="no such lexicon file"):
        lexicon.lexicon_for(str(tmp_path / "missing.txt"), [])
