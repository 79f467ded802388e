"""`slotkeras predict` on files: raw text through the model's tokenizer exactly as
typed utterances, streamed in chunks, and written for annotation tools."""

import io
import json
import time
import types

import pytest
from conftest import ROOT, explain, run, write

from slotkeras import prediction_stream
from slotkeras.data import Utterance, read_utterances
from slotkeras.prediction_stream import Progress, kind_of, predict_file, text_chunks
from slotkeras.prediction_writers import PredictionWriter, model_version
from slotkeras.span_alignment import spans_of

SENTENCES = [
    "Leave Taipei on November 2nd?",
    "show me flights from boston to denver, please!",
    "i want to fly to Boston tomorrow",
    "我要去台北 😀",
    "what is the cheapest fare from dallas to baltimore on may fifth",
]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A tiny model: one epoch on 30 utterances of the bundled corpus (its tags are
    not the point; the same text must come out the same way every way)."""
    folder = tmp_path_factory.mktemp("predict")
    lines = (ROOT / "data" / "train.csv").read_text(encoding="utf-8").splitlines()[:31]
    data = write(folder / "tiny.csv", "\n".join(lines) + "\n")
    result = run(
        ["train.py", "--train", data, "--output", folder / "model", "--epochs", "1",
         "--units", "16", "--no-export", "--verbose", "0"],
    )  # fmt: skip
    assert result.returncode == 0, explain(result)
    return folder / "model"


@pytest.fixture(scope="module")
def loaded(model):
    """The model loaded once: `predict` runs the command in this process with it."""
    from slotkeras.slot_filler import SlotFiller

    return SlotFiller.load(model)


@pytest.fixture
def predict(loaded, monkeypatch, capsys):
    from slotkeras import cli
    from slotkeras.slot_filler import SlotFiller

    monkeypatch.setattr(SlotFiller, "load", classmethod(lambda cls, folder: loaded))

    def command(model, *args):
        capsys.readouterr()
        assert cli.main(["predict", "--model", str(model), *map(str, args)]) == 0
        return capsys.readouterr().out

    return command


@pytest.mark.slow  # two processes each load TensorFlow and the model; in-process below
def test_a_file_of_raw_text_gives_what_the_command_line_gives(model, tmp_path):
    result = run(["-m", "slotkeras", "predict", "--model", model, *SENTENCES])
    assert result.returncode == 0, explain(result)
    typed = result.stdout
    assert len(typed.splitlines()) == len(SENTENCES)
    text = write(tmp_path / "texts.txt", "\n".join(SENTENCES) + "\n")
    result = run(["-m", "slotkeras", "predict", "--model", model, "--file", text])
    assert result.returncode == 0 and result.stdout == typed


def test_csv_and_jsonl_text_give_what_the_command_line_gives(model, predict, tmp_path):
    typed = predict(model, *SENTENCES)
    text = write(tmp_path / "texts.txt", "\n".join(SENTENCES) + "\n")
    assert predict(model, "--file", text) == typed
    rows = "".join(f'"{s}",x\n' for s in SENTENCES)
    assert predict(model, "--file", write(tmp_path / "a.csv", "text,other\n" + rows)) == typed
    records = "".join(json.dumps({"text": s, "id": i}) + "\n" for i, s in enumerate(SENTENCES))
    assert predict(model, "--file", write(tmp_path / "a.jsonl", records)) == typed
    first = json.loads(typed.splitlines()[1])
    assert all(not slot["value"].endswith((",", "!")) for slot in first["slots"])


def test_pretokenized_keeps_the_files_tokens(model, predict, tmp_path):
    path = write(tmp_path / "a.csv", "text\nfly to boston!\n")

    def tokens(*flags):
        out = predict(model, "--file", path, "--output-format", "conll", *flags)
        return [line.split()[0] for line in out.splitlines() if line and line[0] != "#"]

    assert tokens() == ["fly", "to", "boston", "!"]  # the model's tokenizer
    assert tokens("--pretokenized") == ["fly", "to", "boston!"]  # the file's own


def test_label_studio_pre_annotations_import_and_come_back(model, predict, tmp_path):
    text = write(tmp_path / "texts.txt", "\n".join(SENTENCES) + "\n")
    tasks = json.loads(predict(model, "--file", text, "--output-format", "label_studio"))
    typed = [json.loads(line) for line in predict(model, *SENTENCES).splitlines()]
    assert [t["data"]["text"] for t in tasks] == SENTENCES
    for task, expected in zip(tasks, typed):
        (prediction,) = task["predictions"]
        assert prediction["model_version"] == model_version(model)
        assert prediction["model_version"].startswith("model-")
        labels = [r for r in prediction["result"] if r["type"] == "labels"]
        assert [r["value"]["text"] for r in labels] == [s["value"] for s in expected["slots"]]
        assert [r["score"] for r in labels] == [s["confidence"] for s in expected["slots"]]
        assert 0 <= prediction["score"] <= min([1, *(r["score"] for r in labels)])
        assert labels == [] or labels[0]["value"]["start"] == expected["slots"][0]["start"]
    # Accepted in Label Studio, the predictions are annotations in its export.
    for task in tasks:
        task["annotations"] = [{"result": task.pop("predictions")[0]["result"]}]
    export = write(tmp_path / "export.json", json.dumps(tasks))
    read = read_utterances(export)
    for utterance, expected in zip(read, typed):
        assert [(s.start, s.end, s.slot) for s in spans_of(utterance)] == [
            (s["start"], s["end"], s["slot"]) for s in expected["slots"]
        ]
        assert utterance.intent == expected["intent"]


@pytest.mark.parametrize("format, reader", [("rasa", "rasa"), ("conll", "conll")])
def test_rasa_and_conll_predictions_read_back(model, predict, tmp_path, format, reader):
    text = write(tmp_path / "texts.txt", "\n".join(SENTENCES) + "\n\n")
    out = tmp_path / f"out.{format}"
    predict(model, "--file", text, "--output-format", format, "--output", out)
    utterances = read_utterances(out, format=reader)
    assert len(utterances) == len(SENTENCES)  # the empty line is left out
    assert all(u.intent is not None for u in utterances)


def test_bad_input_is_one_line_and_writes_nothing(model, tmp_path):
    rows = "text\n" + "fly to boston\n" * 600 + '"unclosed\n'
    bad = write(tmp_path / "bad.csv", rows)
    out = tmp_path / "out.jsonl"
    for extra in ([], ["--output", out]):
        result = run(["-m", "slotkeras", "predict", "--model", model, "--file", bad, *extra])
        assert result.returncode == 2
        assert result.stdout == "" and result.stderr.count("\n") == 1
        assert result.stderr.startswith(f"error: {bad}, row 602: CSV quoting error")
    assert not out.exists()
    missing = write(tmp_path / "m.csv", "words\nfly\n")
    result = run(["-m", "slotkeras", "predict", "--model", model, "--file", missing])
    assert result.returncode == 2 and "missing column 'text'" in result.stderr


# ---------------------------------------------------------------------------
# Streaming, without a model
# ---------------------------------------------------------------------------


class FakeFiller:
    """Tags each text as one "O" token per word, and counts its calls."""

    def __init__(self):
        self.batches = []

    def serve_text(self, texts):
        self.batches.append(len(texts))
        return {"texts": list(texts)}

    def text_predictions(self, texts, served):
        assert served["texts"] == texts  # each chunk's outputs with its own texts
        return [self._prediction(text) for text in texts]

    @staticmethod
    def _prediction(text):
        tokens = text.split()
        return types.SimpleNamespace(
            text=text, tokens=tokens, tags=["O"] * len(tokens), intent=None,
            intent_probability=None, tag_probabilities=[1.0] * len(tokens),
            starts=[], ends=[], spans=lambda exact=False: [],
            to_json=lambda: {"text": text, "slots": []},
        )  # fmt: skip


class CountingStream(io.StringIO):
    def __init__(self):
        super().__init__()
        self.flushes = 0

    def flush(self):
        self.flushes += 1


def test_a_file_is_tagged_and_written_a_chunk_at_a_time(tmp_path, monkeypatch):
    monkeypatch.setattr(prediction_stream, "CHUNK", 100)
    path = write(tmp_path / "many.txt", "".join(f"line {i}\n" for i in range(1050)))
    chunks = text_chunks(path, "lines", chunk=100)
    assert not isinstance(chunks, list)  # a generator: the file is not held whole
    assert [len(c) for c in chunks] == [100] * 10 + [50]
    filler, out = FakeFiller(), CountingStream()
    writer = PredictionWriter(out, "jsonl")
    assert predict_file(filler, path, writer, kind="lines") == 1050
    # predict_file's own chunks (served two at a time, so they may start in any order)
    assert sorted(filler.batches) == [26, 256, 256, 256, 256]
    assert out.flushes >= 5
    assert out.getvalue().splitlines()[3] == '{"text": "line 3", "slots": []}'


def test_chunks_served_at_once_are_written_in_file_order(tmp_path):
    class SlowFirst(FakeFiller):
        def serve_text(self, texts):
            if texts[0] == "line 0":
                time.sleep(0.2)  # the first chunk finishes after those served beside it
            return super().serve_text(texts)

    path = write(tmp_path / "many.txt", "".join(f"line {i}\n" for i in range(1000)))
    out = CountingStream()
    assert predict_file(SlowFirst(), path, PredictionWriter(out, "jsonl"), kind="lines") == 1000
    texts = [json.loads(line)["text"] for line in out.getvalue().splitlines()]
    assert texts == [f"line {i}" for i in range(1000)]


def test_the_progress_bar_is_drawn_only_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    quiet, shown = io.StringIO(), Terminal()
    for stream in (quiet, shown):
        progress = Progress(1000, stream)
        progress.update(256, 500)
        progress.close()
    assert quiet.getvalue() == ""
    assert "predict: 256 utterances" in shown.getvalue() and "50%" in shown.getvalue()


@pytest.mark.parametrize(
    "name, format, pretokenized, kind",
    [
        ("a.txt", "auto", False, "lines"),
        ("a", "auto", False, "lines"),
        ("a.csv", "auto", False, "csv"),
        ("a.tsv", "auto", False, "csv"),
        ("a.jsonl", "auto", False, "jsonl"),
        ("a.json", "auto", False, "read"),
        ("a.yml", "auto", False, "read"),
        ("a.csv", "auto", True, "read"),
        ("a.txt", "conll", False, "read"),
    ],
)
def test_how_a_file_is_read(tmp_path, name, format, pretokenized, kind):
    assert kind_of(tmp_path / name, format, pretokenized) == kind


def test_utf8_errors_name_the_line(tmp_path):
    path = write(tmp_path / "a.txt", b"fine\nbad \xff byte\n")
    with pytest.raises(Exception, match="line 2: not valid UTF-8"):
        list(text_chunks(path, "lines"))


def test_prediction_writer_formats_without_a_model():
    out = io.StringIO()
    writer = PredictionWriter(out, "label_studio", "m-1")
    writer.close()
    assert json.loads(out.getvalue()) == []
    with pytest.raises(ValueError, match="argument `format`"):
        PredictionWriter(out, "xml")
    assert Utterance(("a",)).text is None


# ---------------------------------------------------------------------------
# rank: what to label next
# ---------------------------------------------------------------------------


def test_rank_writes_the_least_sure_as_a_label_studio_import(model, predict, tmp_path, capsys):
    from slotkeras import cli

    pool = write(tmp_path / "pool.txt", "\n".join(SENTENCES) + "\n\n")
    typed = [json.loads(line) for line in predict(model, *SENTENCES).splitlines()]
    for by in ("span", "entropy", "span-sum"):
        capsys.readouterr()
        argv = ["rank", "--model", str(model), "--file", str(pool), "--top", "3", "--by", by]
        assert cli.main(argv) == 0
        tasks = json.loads(capsys.readouterr().out)
        assert len(tasks) == 3 and len({t["data"]["text"] for t in tasks}) == 3
        for task in tasks:
            expected = typed[SENTENCES.index(task["data"]["text"])]
            labels = [r for r in task["predictions"][0]["result"] if r["type"] == "labels"]
            assert [r["value"]["text"] for r in labels] == [s["value"] for s in expected["slots"]]
    scores = [t["predictions"][0]["score"] for t in tasks]
    capsys.readouterr()
    argv = ["rank", "--model", str(model), "--file", str(pool), "--top", "9"]
    assert cli.main([*argv, "--by", "span"]) == 0
    by_span = json.loads(capsys.readouterr().out)
    assert len(by_span) == len(SENTENCES)  # the empty line is no candidate
    confidence = [t["predictions"][0]["score"] for t in by_span]
    assert confidence == sorted(confidence) and len(scores) == 3  # least sure first
    assert cli.main(argv) == 0
    by_default = json.loads(capsys.readouterr().out)
    assert cli.main([*argv, "--by", "span-sum"]) == 0
    assert by_default == json.loads(capsys.readouterr().out)  # span-sum is the default


def test_entropy_is_that_of_the_crfs_marginals(loaded):
    import numpy as np

    from slotkeras.ranking import entropy_uncertainty

    tokens = [["fly", "to", "boston"], ["show", "me", "flights", "?"], []]
    entropy = entropy_uncertainty(loaded, tokens)
    assert entropy[2] == 0.0 and all(e >= 0 for e in entropy)
    predictions = loaded.predict(tokens[:2])
    for e, p in zip(entropy, predictions):
        # A token whose decoded tag has probability q has entropy at least that of
        # (q, 1 - q) spread as little as can be, and at most log(tags).
        assert e <= np.log(len(loaded.tags)) + 1e-6
        if min(p.tag_probabilities) > 0.999:
            assert e < 0.02


def test_rank_keeps_the_top_k_in_order_with_ties_in_pool_order():
    from slotkeras.ranking import least_sure, rank

    def prediction(name, score):
        return types.SimpleNamespace(
            name=name, tokens=[name] if name else [], tags=["O"] if name else [],
            tag_probabilities=[1 - score] if name else [], intent=None,
            intent_probability=None, spans=lambda exact=False: [],
        )  # fmt: skip

    batches = [
        [prediction("a", 0.1), prediction("b", 0.5), prediction("", 0.9)],
        [prediction("c", 0.5), prediction("d", 0.7), prediction("e", 0.0)],
    ]
    ranked = rank(iter(batches), None, "span", 3)
    assert [p.name for _, p in ranked] == ["d", "b", "c"]
    assert [round(s, 6) for s, _ in ranked] == [0.7, 0.5, 0.5]
    assert least_sure([0.1, 0.5, 0.5, 0.7], 3) == [3, 1, 2]
    with pytest.raises(ValueError, match="argument `by`"):
        rank(iter(batches), None, "loudness", 1)


def test_span_sum_is_the_expected_number_of_wrong_decisions():
    from slotkeras.ranking import expected_errors, span_uncertainty

    spans = [{"confidence": 0.7}]
    prediction = types.SimpleNamespace(
        tokens=["to", "boston", "now"], tags=["O", "B-city", "O"],
        tag_probabilities=[0.9, 0.7, 0.8], intent_probability=0.5,
        spans=lambda exact=False: spans,
    )  # fmt: skip
    # The span (0.3 unsure), the two "O" tokens (0.1, 0.2) and the intent (0.5).
    assert expected_errors([prediction]) == [pytest.approx(1.1)]
    assert span_uncertainty([prediction]) == [pytest.approx(0.5)]
