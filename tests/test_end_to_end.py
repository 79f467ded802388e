"""The whole job on the bundled corpus: train.py -> evaluate.py -> predict -> SavedModel."""

import json
import os
import re
import subprocess
import sys

import conftest
import pytest
from conftest import ROOT
from seqeval.metrics import f1_score

from slotkeras.data import read_utterances

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def run(*args, check=True):
    """conftest's `run` from the project's root; raises unless `check` is off or the
    command succeeded."""
    result = conftest.run(args, timeout=900)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} exited {result.returncode}:\n{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The default model, trained for three epochs on the bundled corpus (with its
    dropout of 0.5, two leave it too weak to compare typed with clean text)."""
    folder = tmp_path_factory.mktemp("e2e") / "default"
    result = run("train.py", "--epochs", "3", "--output", str(folder), "--verbose", "0")
    return folder, result


def test_train_writes_a_complete_model_folder_and_prints_the_held_out_report(trained):
    folder, result = trained
    for name in ("model.keras", "config.json", "labels.json", "history.csv", "metrics.json"):
        assert (folder / name).is_file(), name
    assert (folder / "saved_model" / "saved_model.pb").is_file()
    assert not (folder.parent / f".{folder.name}.partial").exists()
    assert "Held-out report (data/test.csv)" in result.stdout
    assert re.search(r"^slot F1 \d+\.\d\d", result.stdout, re.M)
    assert re.search(r"Training on CPU|Training on \d+ GPU", result.stdout)
    config = json.loads((folder / "config.json").read_text())
    assert config["epochs"] == 3 and config["model"] == "lstm" and config["encoding"] == "both"
    history = (folder / "history.csv").read_text().splitlines()
    header = history[0].split(",")
    assert history[0].startswith("epoch,") and "val_slot_f1" in header
    assert len(history) == 4
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["epochs_trained"] == 3
    # The saved model is the best epoch's: its validation figure is the history's best.
    best = max(float(row.split(",")[header.index("val_slot_f1")]) for row in history[1:])
    assert metrics["validation"]["slot_f1"] == pytest.approx(best, abs=1e-6)
    assert metrics["validation"]["slot_f1"] > 20  # three epochs learn something
    assert config["tokenizer"] == {
        "characters": False, "cjk_characters": False, "keep": [], "marks": []
    }  # fmt: skip


def test_evaluate_report_matches_seqeval_and_the_printed_table(trained, tmp_path):
    folder, _ = trained
    report_path = tmp_path / "report.json"
    errors_path = tmp_path / "errors.txt"
    result = run(
        "evaluate.py",
        "--model",
        str(folder),
        "--data",
        "data/test.csv",
        "--report-json",
        str(report_path),
        "--errors",
        str(errors_path),
        "--plots",
        str(tmp_path / "plots"),
    )
    report = json.loads(report_path.read_text())
    for key in (
        "slot_f1",
        "slot_precision",
        "slot_recall",
        "per_slot",
        "token_accuracy",
        "sentence_accuracy",
        "intent_accuracy",
        "num_utterances",
    ):
        assert key in report, key
    assert report["num_utterances"] == 600

    from slotkeras.slot_filler import SlotFiller

    utterances = read_utterances(ROOT / "data/test.csv")
    predictions = SlotFiller.load(folder).predict([u.tokens for u in utterances])
    expected = 100 * f1_score([list(u.tags) for u in utterances], [p.tags for p in predictions])
    assert report["slot_f1"] == pytest.approx(expected, abs=1e-9)

    printed = re.search(r"^slot F1 (\d+\.\d\d)", result.stdout, re.M).group(1)
    assert printed == f"{report['slot_f1']:.2f}"
    for name, row in report["per_slot"].items():
        line = re.search(
            rf"^{re.escape(name)}\s+(\S+)\s+(\S+)\s+(\S+)\s+(\d+)$", result.stdout, re.M
        )
        assert line, name
        assert line.groups() == (
            f"{row['precision']:.2f}",
            f"{row['recall']:.2f}",
            f"{row['f1']:.2f}",
            str(row["support"]),
        )
    wrong = sum(
        list(u.tags) != p.tags or u.intent != p.intent for u, p in zip(utterances, predictions)
    )
    assert errors_path.read_text().count("# utterance ") == wrong
    assert (tmp_path / "plots" / "training_curves.png").stat().st_size > 1000
    assert (tmp_path / "plots" / "per_slot_f1.png").stat().st_size > 1000
    assert (tmp_path / "plots" / "reliability.png").stat().st_size > 1000
    calibration = report["span_calibration"]
    assert calibration["spans"] == sum(len(p.spans()) for p in predictions)
    assert sum(row["count"] for row in calibration["bins"]) == calibration["spans"]
    assert 0 <= calibration["expected_calibration_error"] <= 100


def test_report_counts_spans_as_conlleval_does():
    """By hand: gold has 3 spans; the prediction opens one with an I- tag (conlleval
    counts it as a span, and here it is right), gets one wrong and misses none."""
    from slotkeras.evaluation import report

    gold = [["B-city", "I-city", "O", "B-date"], ["O", "B-city"]]
    predicted = [["I-city", "I-city", "O", "B-time"], ["O", "B-city"]]
    result = report(gold, predicted)
    # Predicted spans: city(0-2) right, time(3) wrong, city(1) right: P = 2/3.
    # Gold spans: city(0-2), date(3), city(1): two found, R = 2/3.
    assert result["slot_precision"] == pytest.approx(200 / 3)
    assert result["slot_recall"] == pytest.approx(200 / 3)
    assert result["slot_f1"] == pytest.approx(200 / 3)
    assert result["per_slot"]["city"] == {
        "precision": 100.0, "recall": 100.0, "f1": 100.0, "support": 2
    }  # fmt: skip
    assert result["per_slot"]["date"]["recall"] == 0.0
    assert result["token_accuracy"] == pytest.approx(100 * 4 / 6)  # B- vs I- differ as tags
    assert result["sentence_accuracy"] == pytest.approx(50.0)


SERVE_WITHOUT_SLOTKERAS = """
import sys, json
sys.modules["slotkeras"] = None  # importing slotkeras now fails
import tensorflow as tf
serve = tf.saved_model.load(sys.argv[1]).signatures["serve"]
texts = [line.rstrip("\\n") for line in open(sys.argv[2], encoding="utf-8")]
out = serve(tf.constant(texts))
tags = [[t.decode() for t in row if t] for row in out["tags"].numpy()]
intents = [i.decode() for i in out["intent"].numpy()]
json.dump({"tags": tags, "intents": intents}, open(sys.argv[3], "w"))
"""


def test_saved_model_serves_the_keras_models_tags_without_slotkeras(trained, tmp_path):
    folder, _ = trained
    utterances = read_utterances(ROOT / "data/test.csv")
    texts = tmp_path / "texts.txt"
    texts.write_text("".join(" ".join(u.tokens) + "\n" for u in utterances), encoding="utf-8")
    script = tmp_path / "serve.py"
    script.write_text(SERVE_WITHOUT_SLOTKERAS)
    subprocess.run(
        [
            sys.executable,
            str(script),
            str(folder / "saved_model"),
            str(texts),
            str(tmp_path / "out.json"),
        ],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        env=ENV,
        timeout=600,
    )
    served = json.loads((tmp_path / "out.json").read_text())

    from slotkeras.slot_filler import SlotFiller

    predictions = SlotFiller.load(folder).predict([u.tokens for u in utterances])
    assert served["tags"] == [p.tags for p in predictions]
    assert served["intents"] == [p.intent for p in predictions]


def test_large_batches_served_in_chunks_match_one_padded_batch(trained, tmp_path):
    import numpy as np
    import tensorflow as tf

    from slotkeras.saved_model_export import export_saved_model
    from slotkeras.slot_filler import SlotFiller

    folder, _ = trained
    texts = [" ".join(u.tokens) for u in read_utterances(ROOT / "data/test.csv")][:45]
    texts[7] = ""  # an empty utterance among them
    texts[20] = "  ".join(texts[20].split()[::-1] * 3)  # the longest, in the middle
    filler = SlotFiller.load(folder)
    export_saved_model(filler, tmp_path / "chunks_of_4", chunk_size=4)
    export_saved_model(filler, tmp_path / "one_batch", chunk_size=len(texts))
    chunked = tf.saved_model.load(str(tmp_path / "chunks_of_4")).signatures["serve"]
    whole = tf.saved_model.load(str(tmp_path / "one_batch")).signatures["serve"]
    a, b = chunked(tf.constant(texts)), whole(tf.constant(texts))
    assert a["tags"].shape == (len(texts), len(texts[20].split()))
    for key in ("tokens", "tags", "intent", "starts", "ends"):
        np.testing.assert_array_equal(a[key].numpy(), b[key].numpy())
    for key in ("intent_probability", "tag_probabilities"):
        np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-6)
    predictions = filler.predict([t.split() for t in texts])
    assert [[t.decode() for t in row if t] for row in a["tags"].numpy()] == [
        p.tags for p in predictions
    ]


def test_predict_command_prints_spans_of_the_users_own_text(trained):
    folder, _ = trained
    texts = ["leave taipei on november 2nd", "Show me flights from Boston to Denver on Friday?"]
    result = run("-m", "slotkeras", "predict", "--model", str(folder), *texts)
    lines = [json.loads(line) for line in result.stdout.strip().splitlines()[-2:]]
    from slotkeras.slot_filler import SlotFiller

    expected = SlotFiller.load(folder).tag_text(texts)
    for text, line, prediction in zip(texts, lines, expected):
        assert line["text"] == text
        assert 0 < line["intent_probability"] <= 1
        assert line["slots"] == prediction.to_json()["slots"]
        for slot in line["slots"]:
            assert set(slot) == {
                "slot", "value", "start", "end", "token_start", "token_end", "confidence"
            }  # fmt: skip
            assert text[slot["start"] : slot["end"]] == slot["value"]
            assert not set(slot["value"]) & set("?,.")
            assert 0 < slot["confidence"] <= 1
    assert len(lines[1]["slots"]) >= 2  # Boston, Denver, Friday: three epochs find some


def test_typed_text_tags_as_the_corpus_tokens_do_without_glued_marks(trained):
    """The bundled held-out set typed as people type (sentence case, names
    capitalized, a closing ? or .) and served from raw text: about the same F1 on
    the original words, and no value takes in a mark (bench/typed_text.py runs
    the same on ATIS; three epochs leave a weaker model, hence the wider margin)."""
    sys.path.insert(0, str(ROOT / "bench"))
    from typed_text import score_typed, typed_utterance

    from slotkeras.slot_filler import SlotFiller

    utterances = read_utterances(ROOT / "data/test.csv")
    text, spans = typed_utterance(
        ["what", "flights", "leave", "boston"], ["O", "O", "O", "B-fromloc.city_name"]
    )
    assert text == "What flights leave Boston?" and spans[-1] == (19, 25)
    result = score_typed(SlotFiller.load(folder := trained[0]), utterances)
    assert result["leaked_values"] == 0
    assert abs(result["typed_slot_f1"] - result["clean_slot_f1"]) < 3.0, (folder, result)


def test_bad_flags_and_unreadable_model_folders_exit_2_with_one_line(tmp_path):
    cases = [
        ("train.py", "--units", "-3"),
        ("train.py", "--no-such-flag"),
        ("evaluate.py", "--model", str(tmp_path / "missing")),
        ("-m", "slotkeras", "predict", "--model", str(tmp_path), "hello"),
        ("train.py", "--lexicon", str(tmp_path / "words.txt"), "--output", str(tmp_path / "m")),
    ]
    (tmp_path / "words.txt").write_bytes(b"\xff\n")  # not UTF-8
    for args in cases:
        result = run(*args, check=False)
        assert result.returncode == 2, args
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "words.txt, line 1" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["words.txt"]  # nothing written


def test_bidirectional_lstm_tells_arrive_from_leave(tmp_path):
    """The lecture's signature example: only context tells departure from destination."""
    folder = tmp_path / "bilstm"
    run(
        "train.py",
        "--model",
        "lstm",
        "--bidirectional",
        "--layers",
        "1",
        "--units",
        "64",
        "--epochs",
        "8",
        "--output",
        str(folder),
        "--verbose",
        "0",
        "--no-export",
    )
    result = run(
        "-m",
        "slotkeras",
        "predict",
        "--model",
        str(folder),
        # The held-out pair (data/test.csv), not sentences the model trained on.
        "i would like to arrive taipei on november 2nd",
        "i would like to leave taipei on november 2nd",
    )
    arrive, leave = (json.loads(line) for line in result.stdout.strip().splitlines()[-2:])
    city = {"value": "taipei", "start": 23, "end": 29, "token_start": 5, "token_end": 6}
    assert {**city, "slot": "toloc.city_name"} in [_without_confidence(s) for s in arrive["slots"]]
    city = {**city, "start": 22, "end": 28}
    assert {**city, "slot": "fromloc.city_name"} in [_without_confidence(s) for s in leave["slots"]]


def _without_confidence(span):
    return {k: v for k, v in span.items() if k != "confidence"}


@pytest.mark.slow  # XLA compiles every batch length: about half a minute
def test_jit_compile_trains_with_xla(tmp_path):
    """`--jit-compile` reaches Keras: the run says XLA is on (TF's op determinism, under
    which Keras compiles nothing with XLA, is left off) and trains to a model folder."""
    rows = (ROOT / "data" / "train.csv").read_text(encoding="utf-8").splitlines()
    header, utterances = rows[0], [r for r in rows[1:] if len(r.split(",")[0].split()) == 6]
    data = tmp_path / "six_words.csv"
    data.write_text("\n".join([header, *utterances[:40]]) + "\n", encoding="utf-8")
    folder = tmp_path / "xla"
    result = run(
        "train.py", "--train", str(data), "--jit-compile", "--epochs", "1",
        "--units", "8", "--embedding-dim", "8", "--hash-dim", "8", "--hash-buckets", "512",
        "--batch-size", "64", "--output", str(folder), "--verbose", "0", "--no-export",
    )  # fmt: skip
    assert "XLA compilation: on" in result.stdout + result.stderr
    assert (folder / "model.keras").is_file()
    assert json.loads((folder / "config.json").read_text())["jit_compile"] is True
