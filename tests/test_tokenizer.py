"""The raw-text tokenizer: what people type, split as the training data was."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT

from slotkeras import data
from slotkeras.tokenizer import MARKS, Tokenizer

SHARED = ROOT.parent / "shared" / "data"


def tokenize(tokenizer, texts):
    out = {k: v.numpy() for k, v in tokenizer.tokenize(tf.constant(texts, tf.string)).items()}
    rows = []
    for i, text in enumerate(texts):
        width = int(np.sum(out["tokens"][i] != b""))
        tokens = [t.decode("utf-8") for t in out["tokens"][i, :width]]
        spans = list(zip(out["starts"][i, :width].tolist(), out["ends"][i, :width].tolist()))
        # Every token is the input's own substring at its code point offsets.
        assert [text[s:e] for s, e in spans] == tokens
        rows.append((tokens, spans))
    return rows


def words(tokenizer, text):
    return tokenize(tokenizer, [text])[0][0]


ATIS_LIKE = Tokenizer.fit([["fly", "to", "st.", "louis", "at", "5:30", "i'd", "a.m."]])


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Boston?", ["Boston", "?"]),
        (
            "Show me flights from Boston to Denver on Friday?",
            ["Show", "me", "flights", "from", "Boston", "to", "Denver", "on", "Friday", "?"],
        ),
        ("to San Francisco, please?", ["to", "San", "Francisco", ",", "please", "?"]),
        ("Fly to St. Louis.", ["Fly", "to", "St.", "Louis", "."]),
        ("St.?", ["St.", "?"]),  # the lexicon word keeps its mark, the rest splits
        ("(at 5:30 A.M.)", ["(", "at", "5:30", "A.M.", ")"]),
        ("I'd like $200!", ["I'd", "like", "$200", "!"]),
        (
            '"Denver"; then: Boston...',
            ['"', "Denver", '"', ";", "then", ":", "Boston", ".", ".", "."],
        ),
        ("[Boston] {x}", ["[", "Boston", "]", "{", "x", "}"]),
        ("«Oslo» “Rome” ‘Nice’", ["«", "Oslo", "»", "“", "Rome", "”", "‘", "Nice", "’"]),
        ("?!", ["?", "!"]),
        ("", []),
        (" \t\u3000\n", []),
    ],
)
def test_marks_split_off_words_unless_the_lexicon_has_the_word(text, expected):
    assert words(ATIS_LIKE, text) == expected


def test_the_traced_graph_tokenizes_as_eager_code_does():
    texts = ["Fly to St. Louis?", "(at 5:30 A.M.)", "", "St.?"]
    graph = tf.function(ATIS_LIKE.tokenize, input_signature=[tf.TensorSpec([None], tf.string)])
    eager, traced = ATIS_LIKE.tokenize(tf.constant(texts)), graph(tf.constant(texts))
    for key in ("tokens", "starts", "ends"):
        np.testing.assert_array_equal(eager[key].numpy(), traced[key].numpy())
    assert traced["tokens"].numpy()[0, 2] == b"St."


def test_a_large_lexicon_keeps_every_word_and_only_those():
    lexicon = [f"w{i}." for i in range(2000)]
    tokenizer = Tokenizer.fit([lexicon])
    assert words(tokenizer, "w7. w1999.? w2000.") == ["w7.", "w1999.", "?", "w2000", "."]


@pytest.mark.parametrize(
    "text",
    ["a\u00a0b\u2003c\x1cd\u3000e\r\nf", "fly  to\tboston\n", "台北\u3000東京\xa0x", "   "],
)
def test_whitespace_is_what_the_readers_split_on(text):
    assert words(ATIS_LIKE, text) == text.split()


def test_offsets_are_code_points_not_bytes():
    text = "Zürich 😀 to Köln?"
    tokens, spans = tokenize(ATIS_LIKE, [text])[0]
    assert tokens == ["Zürich", "😀", "to", "Köln", "?"]
    assert spans[-1] == (len(text) - 1, len(text))


def test_invalid_utf8_becomes_replacement_characters_with_their_offsets():
    # Invalid bytes in one utterance of a batch: each invalid sequence is one
    # U+FFFD, the tokens are valid UTF-8, the offsets count the repaired text's
    # code points, and the other utterances are untouched.
    texts = [b"to b\xffston?", "Zürich?".encode(), b"\xed\xa0\x80 x \xc3"]
    out = {k: v.numpy() for k, v in ATIS_LIKE.tokenize(tf.constant(texts)).items()}
    repaired = [t.decode("utf-8", errors="replace") for t in texts]
    assert repaired[0] == "to b\ufffdston?"
    for i, text in enumerate(repaired):
        width = int(np.sum(out["tokens"][i] != b""))
        tokens = [t.decode("utf-8") for t in out["tokens"][i, :width]]
        spans = zip(out["starts"][i, :width].tolist(), out["ends"][i, :width].tolist())
        assert [text[s:e] for s, e in spans] == tokens
        assert "".join(tokens) == "".join(text.split())
    assert out["tokens"][0, :3].tolist() == [b"to", "b\ufffdston".encode(), b"?"]


def test_a_batch_pads_with_empty_tokens_and_minus_one():
    out = ATIS_LIKE.tokenize(tf.constant(["fly to boston", "", "hi"]))
    assert out["tokens"].shape == (3, 3)
    assert out["tokens"].numpy()[1].tolist() == [b"", b"", b""]
    assert out["starts"].numpy()[1].tolist() == [-1, -1, -1]
    assert out["ends"].numpy()[2].tolist() == [2, -1, -1]
    empty = ATIS_LIKE.tokenize(tf.constant([], tf.string))
    assert empty["tokens"].shape == (0, 1)


def test_fit_detects_character_level_and_cjk_corpora():
    chars = Tokenizer.fit([list("高勇：男，中国国籍（PMI）"), list("2007年")])
    assert chars.characters and chars.cjk_characters
    assert words(chars, "来张信哲的歌") == list("来张信哲的歌")
    assert words(chars, "高勇(PMI Member)") == list("高勇(PMIMember)")
    # Chinese characters one by one, Latin words whole: only CJK is split.
    mixed = Tokenizer.fit([["我", "爱", "北", "京", "hello", "world", "。"]])
    assert not mixed.characters and mixed.cjk_characters
    assert words(mixed, "我爱北京 hello, world。天安门") == [
        "我",
        "爱",
        "北",
        "京",
        "hello",
        ",",
        "world",
        "。",
        "天",
        "安",
        "门",
    ]
    assert words(mixed, "こんにちは한국") == list("こんにちは한국")
    english = Tokenizer.fit([["fly", "to", "boston"]])
    assert not english.characters and not english.cjk_characters
    assert words(english, "北京") == ["北京"]


def test_fit_keeps_only_words_with_an_edge_mark_and_round_trips_through_config():
    tokenizer = Tokenizer.fit([["st.", "o'clock", "i'd", "'s", "boston", "D.C."]])
    assert tokenizer.keep == ("'s", "d.c.", "st.")
    assert Tokenizer.from_config(tokenizer.get_config()) == tokenizer
    assert Tokenizer.from_config(None) == Tokenizer()
    assert all(mark in MARKS for mark in "?!.,;:\"'()[]{}")


CORPORA = [
    ("atis", " "),
    ("mit_movie_trivia", " "),
    ("resume_ner", " "),
    ("resume_ner", ""),
]


@pytest.mark.parametrize("corpus, joiner", CORPORA)
def test_joined_tokens_of_every_shared_corpus_tokenize_back(corpus, joiner):
    folder = SHARED / corpus
    if not folder.is_dir():
        pytest.skip(f"{folder} is not here (../shared/data is read, never copied)")
    splits = {name: data.read_utterances(folder / name) for name in ("train", "valid", "test")}
    tokenizer = Tokenizer.fit(u.tokens for u in splits["train"])
    assert tokenizer.characters == (corpus == "resume_ner")
    for name, utterances in splits.items():
        texts = [joiner.join(u.tokens) for u in utterances]
        rows = tokenize(tokenizer, texts)
        same = sum(tokens == list(u.tokens) for (tokens, _), u in zip(rows, utterances))
        assert same >= 0.999 * len(utterances), (corpus, name, same, len(utterances))


def test_joined_tokens_of_the_bundled_corpus_tokenize_back():
    splits = {
        name: data.read_utterances(ROOT / "data" / f"{name}.csv") for name in ("train", "test")
    }
    tokenizer = Tokenizer.fit(u.tokens for u in splits["train"])
    for utterances in splits.values():
        rows = tokenize(tokenizer, [" ".join(u.tokens) for u in utterances])
        same = sum(tokens == list(u.tokens) for (tokens, _), u in zip(rows, utterances))
        assert same >= 0.999 * len(utterances)


@pytest.mark.parametrize(
    "tokenizer",
    [
        ATIS_LIKE,
        Tokenizer.fit([["(", "fly", ")", "...", "st.", "?!"]]),  # seen runs of marks
        Tokenizer.fit([list("我要从台北飞到东京。")]),
    ],
)
def test_split_marks_are_the_tokens_made_of_marks_only_that_need_a_pattern_match(tokenizer):
    """The serving path asks the tokenizer which tokens it split off as marks, in
    place of matching each token against the marks: the same unseen marks."""
    texts = [
        "Fly to St. Louis?!", "(Boston)...", "\"a.m.\" , ; : ...", "?!", "5:30, i'd «go»",
        "我要从台北飞到东京。", "“东京”？！", "...st.?", "", "。。",
    ]  # fmt: skip
    out = tokenizer.tokenize(tf.constant(texts))
    tokens, split = out["tokens"], out["split_marks"]
    pattern = tokenizer.unseen_marks(tokens)
    np.testing.assert_array_equal(tokenizer.unseen_marks(tokens, split), pattern)
    assert np.any(pattern.numpy()) and np.any(split.numpy())
    assert not np.any(split.numpy()[tokens.numpy() == b""])
