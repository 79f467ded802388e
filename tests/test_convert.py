"""`slotkeras convert`: every format to every other, with exact round trips, on the
bundled corpus (fast) and on the shared corpora (slow)."""

import itertools
import json

import pytest
from conftest import ROOT, explain, run, write

from slotkeras.corpus_writers import rules_spec
from slotkeras.data import DataError, Utterance, convert, read_utterances, write_utterance_csv
from slotkeras.raw_text import READING_RULES, TextRules
from slotkeras.span_alignment import Report

SHARED = ROOT.parent / "shared" / "data"
# Each format, with the file name it is written to and the --format that reads it.
FORMATS = {
    "utterance_csv": ("u.csv", "utterance_csv"),
    "token_csv": ("t.csv", "token_csv"),
    "folder": ("seq", "folder"),
    "conll": ("c.conll", "conll"),
    "jsonl": ("j.jsonl", "jsonl"),
    "markup_csv": ("m.csv", "markup"),
    "markdown": ("m.md", "markup"),
    "rasa": ("r.yml", "rasa"),
    "label_studio": ("l.json", "label_studio"),
}
SPAN_FORMATS = ("jsonl", "markup_csv", "markdown", "rasa", "label_studio")


def read(name, path, tokenizer="words"):
    return read_utterances(path, format=FORMATS[name][1], text_tokenizer=tokenizer, report=Report())


def write_all(source, folder, tokenizer="words", formats=FORMATS) -> dict:
    """`source` written in every format into `folder`: name -> path. Nothing is
    reported but the reading rules the span formats need (and I- tags that open a
    span, which spans write as B-)."""
    paths = {}
    for name in formats:
        filename, format = FORMATS[name]
        report = Report()
        path = folder / filename
        convert(source, path, output_format=format, text_tokenizer=tokenizer, report=report)
        notes = ("--text-tokenizer", "opens a span")
        assert all(any(n in line for n in notes) for line in report.lines), report.lines
        paths[name] = path
    return paths


def same(a, b) -> bool:
    """The same utterances, and the same texts and offsets where they have them."""
    keys = [(u.text, u.starts, u.ends) for u in a], [(u.text, u.starts, u.ends) for u in b]
    return a == b and keys[0] == keys[1]


def assert_every_pair_round_trips(paths, folder, tokenizer="words"):
    first = {name: read(name, path, tokenizer) for name, path in paths.items()}
    failed = []
    for a, b in itertools.permutations(paths, 2):
        there = folder / f"{a}-to-{b}" / FORMATS[b][0]
        back = folder / f"{a}-to-{b}-back" / FORMATS[a][0]
        options = {"text_tokenizer": tokenizer, "report": Report()}
        convert(paths[a], there, format=FORMATS[a][1], output_format=FORMATS[b][1], **options)
        convert(there, back, format=FORMATS[b][1], output_format=FORMATS[a][1], **options)
        if not same(read(a, back, tokenizer), first[a]):
            failed.append(f"{a} -> {b} -> {a}")
    assert not failed


@pytest.fixture(scope="module")
def bundled_sample(tmp_path_factory):
    """The first 150 utterances of the bundled training corpus."""
    utterances = read_utterances(ROOT / "data" / "train.csv")[:150]
    path = tmp_path_factory.mktemp("bundled") / "sample.csv"
    write_utterance_csv(utterances, path)
    return path, utterances


def test_every_pair_of_formats_round_trips_on_the_bundled_corpus(bundled_sample, tmp_path):
    source, utterances = bundled_sample
    paths = write_all(source, tmp_path)
    for name, path in paths.items():
        assert read(name, path) == utterances, name
    assert_every_pair_round_trips(paths, tmp_path)


@pytest.mark.parametrize("name", SPAN_FORMATS)
def test_every_span_format_reads_the_bundled_corpus_as_its_bio_form(tmp_path, name):
    source = ROOT / "data" / "train.csv"
    filename, format = FORMATS[name]
    report = Report()
    convert(source, tmp_path / filename, output_format=format, report=report)
    assert report.lines == []  # the readers' own rules give the tokens back
    utterances = read_utterances(tmp_path / filename)
    assert utterances == read_utterances(source)
    assert [u.text for u in utterances] == [" ".join(u.tokens) for u in utterances]


def test_the_span_formats_as_they_are_written(tmp_path):
    utterances = [
        Utterance(("fly", "to", "new", "york", "?"), ("O", "O", "B-city", "I-city", "O"), "fl"),
        Utterance(("hi",), ("O",), "greet#x"),
    ]
    source = write_csv(tmp_path, utterances)
    written = {}
    for name in SPAN_FORMATS:
        convert(source, tmp_path / FORMATS[name][0], output_format=FORMATS[name][1])
        written[name] = (tmp_path / FORMATS[name][0]).read_text(encoding="utf-8")
    assert written["markdown"] == (
        "## intent:fl\n- fly to [new york](city) ?\n\n## intent:greet#x\n- hi\n"
    )
    assert written["rasa"] == (
        'version: "3.1"\nnlu:\n- intent: fl\n  examples: |\n    - fly to [new york](city) ?\n'
        "- intent: greet#x\n  examples: |\n    - hi\n"
    )
    assert written["markup_csv"] == "text,intent\nfly to [new york](city) ?,fl\nhi,greet#x\n"
    record = json.loads(written["jsonl"].splitlines()[0])
    assert record["spans"] == [[7, 15, "city"]] and record["intent"] == "fl"
    assert record["tokens"][2] == {"text": "new", "start": 7, "end": 10, "id": 2}
    task = json.loads(written["label_studio"])[0]
    assert task["data"] == {"text": "fly to new york ?"}
    result = task["annotations"][0]["result"]
    assert result[0]["value"] == {"start": 7, "end": 15, "text": "new york", "labels": ["city"]}
    assert result[1]["value"] == {"choices": ["fl"]}


def write_csv(folder, utterances):
    path = folder / "source.csv"
    write_utterance_csv(utterances, path)
    return path


def test_tokens_the_reading_rules_do_not_give_back(tmp_path):
    # "st." stays a token only with rules that keep it; the report names them.
    source = write_csv(tmp_path, [Utterance(("to", "st.", "louis"), ("O", "B-c", "I-c"))])
    report = Report()
    convert(source, tmp_path / "a.md", report=report)
    assert report.lines == [
        f"{tmp_path / 'a.md'}: its text reads back to these tokens with --text-tokenizer "
        '\'{"keep": ["st."]}\''
    ]
    assert read_utterances(tmp_path / "a.md")[0].tokens == ("to", "st", ".", "louis")
    kept = read_utterances(tmp_path / "a.md", text_tokenizer='{"keep": ["st."]}')
    assert kept == read_utterances(source)
    # Tokens no rules give back: an error naming the utterance (jsonl keeps them).
    letters = Utterance(tuple("abcdefghijklmnopqrst"), ("O",) * 20)
    odd = write_csv(tmp_path, [letters, Utterance(("ab",), ("O",))])  # a character a token
    with pytest.raises(DataError, match="utterance 1: the text 'abcdefghijklmnopqrst' reads"):
        convert(odd, tmp_path / "b.md")
    assert not (tmp_path / "b.md").exists()
    convert(odd, tmp_path / "b.jsonl")
    assert read_utterances(tmp_path / "b.jsonl") == read_utterances(odd)


def test_a_character_level_corpus_is_joined_with_nothing(tmp_path):
    tokens = list("我在MBA班")
    source = write_csv(tmp_path, [Utterance(tokens, ["O", "O", "B-edu", "I-edu", "I-edu", "O"])])
    report = Report()
    convert(source, tmp_path / "a.json", report=report)
    assert json.loads((tmp_path / "a.json").read_text())[0]["data"]["text"] == "我在MBA班"
    assert "--text-tokenizer 'characters'" in report.lines[0]
    assert read_utterances(tmp_path / "a.json", text_tokenizer="characters") == read_utterances(
        source
    )
    assert rules_spec(READING_RULES) == "words" and rules_spec(TextRules()) == "{}"


def test_an_inside_tag_that_opens_a_span_is_reported(tmp_path):
    source = write_csv(tmp_path, [Utterance(("a", "b"), ("O", "I-x"))])
    report = Report()
    convert(source, tmp_path / "a.jsonl", report=report)
    assert report.lines == [
        f"{tmp_path / 'a.jsonl'}: utterance 1: I-x opens a span (token 2); written as a span "
        "it reads back as B-x"
    ]
    assert read_utterances(tmp_path / "a.jsonl")[0].tags == ("O", "B-x")


def test_conll_keeps_intents_in_comment_lines(tmp_path):
    path = write(tmp_path / "a.conll", "# intent = fly\nto O\nboston B-c\n\n# intent=x y\nhi O\n")
    assert read_utterances(path) == [
        Utterance(("to", "boston"), ("O", "B-c"), "fly"),
        Utterance(("hi",), ("O",), "x y"),
    ]
    write(path, "# intent = fly\nto O\n\nhi O\n")
    with pytest.raises(DataError, match="line 4: no '# intent = NAME', but other lines have one"):
        read_utterances(path)


def test_the_command_line(tmp_path):
    source = write_csv(tmp_path, [Utterance(("fly", "to", "boston"), ("O", "O", "B-c"), "f")])
    out = tmp_path / "out.txt"
    result = run(["-m", "slotkeras", "convert", source, out, "--output-format", "rasa"])
    assert result.returncode == 0, explain(result)
    assert result.stdout == f"wrote 1 utterances to {out}\n"
    assert read_utterances(out, format="rasa") == read_utterances(source)
    bad = write(tmp_path / "bad.jsonl", '{"text": "to Boston", "spans": [[3, 7, "c"]]}\n')
    result = run(["-m", "slotkeras", "convert", bad, tmp_path / "never.csv"])
    assert result.returncode == 2
    assert result.stderr.startswith(f'error: {bad}, line 1: span 3-7 "Bost" cuts the token')
    assert result.stderr.count("\n") == 1 and not (tmp_path / "never.csv").exists()
    result = run(["-m", "slotkeras", "convert", bad, out, "--misaligned-spans", "expand"])
    assert result.returncode == 0 and result.stderr.startswith("warning: ")
    result = run(["-m", "slotkeras", "convert", source, tmp_path / "x.weird"])
    assert result.returncode == 2 and "give --output-format" in result.stderr


# ---------------------------------------------------------------------------
# The shared corpora (slow: each split in every format, every pair on valid)
# ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("corpus", ["atis", "mit_movie_trivia", "resume_ner"])
def test_every_format_and_pair_on_a_shared_corpus(tmp_path, corpus):
    folder = SHARED / corpus
    if not folder.is_dir():
        pytest.skip(f"{folder} is not here (../shared/data is read, never copied)")
    train = read_utterances(folder / "train")
    fitted = TextRules.fit(u.tokens for u in train)
    tokenizer = rules_spec(fitted)
    formats = list(FORMATS)
    if corpus == "mit_movie_trivia":
        # Its token "nan" is a missing value to the token CSV reader (pandas writes NaN
        # so), so the writer refuses it in one line; every other format holds it.
        with pytest.raises(DataError, match="the token 'nan' would read back as a missing"):
            convert(folder / "train", tmp_path / "t.csv", output_format="token_csv")
        formats.remove("token_csv")
    for split in ("train", "valid", "test"):
        utterances = read_utterances(folder / split)
        paths = write_all(folder / split, tmp_path / split, tokenizer, formats)
        for name, path in paths.items():
            again = read(name, path, tokenizer)
            # I- that opens a span reads back as B- from spans (two in resume_ner's train).
            differ = [i for i, (a, b) in enumerate(zip(again, utterances)) if a != b]
            assert len(again) == len(utterances) and len(differ) <= 2, (split, name)
            for i in differ:
                assert again[i].tokens == utterances[i].tokens and name in SPAN_FORMATS
        if split == "valid":
            assert_every_pair_round_trips(paths, tmp_path / "pairs", tokenizer)


@pytest.mark.slow
def test_every_pair_on_the_whole_bundled_corpus(tmp_path):
    paths = write_all(ROOT / "data" / "train.csv", tmp_path)
    assert_every_pair_round_trips(paths, tmp_path)


@pytest.mark.slow
def test_a_model_trained_from_a_span_format_is_the_one_from_its_bio_csv(tmp_path):
    """The same utterances, the same seed: the same weights, to the bit."""
    import keras
    import numpy as np

    import slotkeras.layers  # noqa: F401  (registers the layers)

    lines = (ROOT / "data" / "train.csv").read_text(encoding="utf-8").splitlines()[:41]
    source = write(tmp_path / "bio.csv", "\n".join(lines) + "\n")
    weights = {}
    for name in ("utterance_csv", "jsonl", "label_studio", "rasa"):
        path = source if name == "utterance_csv" else tmp_path / FORMATS[name][0]
        if path != source:
            convert(source, path, output_format=name)
        folder = tmp_path / f"model-{name}"
        result = run(["train.py", "--train", path, "--output", folder, "--epochs", "1",
                      "--units", "16", "--no-export", "--verbose", "0"])  # fmt: skip
        assert result.returncode == 0, explain(result)
        model = keras.models.load_model(folder / "model.keras", compile=False)
        weights[name] = model.get_weights()
    for name, arrays in weights.items():
        assert len(arrays) == len(weights["utterance_csv"])
        for a, b in zip(arrays, weights["utterance_csv"]):
            np.testing.assert_array_equal(a, b, err_msg=name)
