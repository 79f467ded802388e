"""slotkeras.raw_text: the graph tokenizer's rules in plain Python, for the readers."""

import random

import numpy as np
import pytest
import tensorflow as tf

from slotkeras import raw_text, tokenizer
from slotkeras.raw_text import READING_RULES, TextRules
from slotkeras.tokenizer import Tokenizer

SENTENCES = [
    "Show me flights from Boston to Denver on Friday?",
    "Fly to St. Louis. (at 5:30 A.M.) I'd like $200!",
    '"Denver"; then: Boston... «Oslo» “Rome” ‘Nice’ ?! [x] {y}',
    "我要从台北飞到东京。明天下午3点的航班？",
    "来张信哲的歌 (PMI Member) 2007年10月",
    "こんにちは、東京タワー！한국어 텍스트",
    "Zürich 😀 to Köln? 👍🏽 thumbs, 🇹🇼 flag",
    "café vs cafe\u0301 — e\u0301le\u0300ve, n\u0303o",
    "a\u00a0b\u2003c\x1cd\u3000e\r\nf\tg",
    "   ",
    "",
    "𠀀𠀁 supplementary ideographs 𪚥",
    "ｆｕｌｌ　ｗｉｄｔｈ！（ｘ）",
    "...?!", "o'clock 'quoted' don't", "St.? st. ST.",
]  # fmt: skip
CONFIGS = [
    Tokenizer(),
    Tokenizer(cjk_characters=True),
    Tokenizer(characters=True, cjk_characters=True),
    Tokenizer(cjk_characters=True, keep=("st.", "a.m.", "...", "'s", "(pmi")),
]


def graph_tokens(config, texts):
    out = {k: v.numpy() for k, v in config.tokenize(tf.constant(texts, tf.string)).items()}
    rows = []
    for i in range(len(texts)):
        width = int(np.sum(out["starts"][i] >= 0))
        tokens = [t.decode("utf-8") for t in out["tokens"][i, :width]]
        rows.append(list(zip(tokens, out["starts"][i, :width].tolist(), out["ends"][i, :width])))
    return rows


def random_texts(count, seed=0):
    alphabet = (
        list("abcXYZ019 \t\u00a0\u3000$%-/@")
        + list(raw_text.MARKS)
        + list("中国人民大学こんにちは한국😀👍🏽é\u0301ñ")
        + ["\U00020001", "\u200b", "\ufeff", "ｆ", "\u2028", "\U0001f1f9"]
    )
    rng = random.Random(seed)
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30))) for _ in range(count)]


@pytest.mark.parametrize("config", CONFIGS, ids=["plain", "cjk", "characters", "keep"])
def test_the_same_tokens_and_offsets_as_the_graph_tokenizer(config):
    texts = SENTENCES + random_texts(600)
    rules = TextRules(config.characters, config.cjk_characters, config.keep)
    for text, expected in zip(texts, graph_tokens(config, texts), strict=True):
        assert [(t, s, int(e)) for t, s, e in expected] == rules.tokenize(text), text


def test_the_character_classes_are_stated_once():
    assert tokenizer.MARKS is raw_text.MARKS and tokenizer.PEELS is raw_text.PEELS
    assert list(tokenizer.WHITESPACE) == [c for c in range(0x3001) if chr(c).isspace()]


def test_the_reading_rules_split_marks_and_cjk():
    assert [t for t, _, _ in READING_RULES.tokenize("Fly to St. Louis?")] == [
        "Fly", "to", "St", ".", "Louis", "?",
    ]  # fmt: skip
    assert [t for t, _, _ in READING_RULES.tokenize("来张信哲的歌 MBA")] == [
        *"来张信哲的歌", "MBA",
    ]  # fmt: skip
    assert READING_RULES.tokenize("cafe\u0301!") == [("cafe\u0301", 0, 5), ("!", 5, 6)]


@pytest.mark.parametrize(
    "tokens",
    [
        [["fly", "to", "st.", "louis", "at", "5:30", "i'd", "a.m."]],
        [list("高勇：男，中国国籍（PMI）"), list("2007年")],
        [["我", "爱", "北", "京", "hello", "world", "。"]],
        [["fly", "to", "boston"]],
        [["St.", "D.C.", "'s"]],
    ],
)
def test_fit_makes_the_graph_tokenizers_choices(tokens):
    graph = Tokenizer.fit(tokens)
    rules = TextRules.fit(tokens)
    assert rules == TextRules(graph.characters, graph.cjk_characters, graph.keep)
    assert TextRules.from_config(graph.get_config()) == rules
    assert TextRules.from_config(rules.get_config()) == rules
