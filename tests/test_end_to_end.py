"""The whole job on the bundled corpus: train.py -> evaluate.py -> predict -> SavedModel."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from seqeval.metrics import f1_score

from slotkeras.data import read_utterances

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def run(*args, check=True):
    result = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, env=ENV, timeout=900
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{args} exited {result.returncode}:\n{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The default model, trained for two epochs on the bundled corpus."""
    folder = tmp_path_factory.mktemp("e2e") / "default"
    result = run("train.py", "--epochs", "2", "--output", str(folder), "--verbose", "0")
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
    assert config["epochs"] == 2 and config["model"] == "lstm" and config["encoding"] == "both"
    history = (folder / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,") and "val_slot_f1" in history[0]
    assert len(history) == 3
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["epochs_trained"] == 2
    assert 0 < metrics["validation"]["slot_f1"] <= 100


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

    from slotkeras.predictor import SlotFiller

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

    from slotkeras.predictor import SlotFiller

    predictions = SlotFiller.load(folder).predict([u.tokens for u in utterances])
    assert served["tags"] == [p.tags for p in predictions]
    assert served["intents"] == [p.intent for p in predictions]


def test_large_batches_served_in_chunks_match_one_padded_batch(trained, tmp_path):
    import numpy as np
    import tensorflow as tf

    from slotkeras.predictor import SlotFiller, export_saved_model

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
    for key in ("tokens", "tags", "intent"):
        np.testing.assert_array_equal(a[key].numpy(), b[key].numpy())
    np.testing.assert_allclose(a["intent_probability"], b["intent_probability"], rtol=1e-5)
    predictions = filler.predict([t.split() for t in texts])
    assert [[t.decode() for t in row if t] for row in a["tags"].numpy()] == [
        p.tags for p in predictions
    ]


def test_predict_command_prints_spans(trained):
    folder, _ = trained
    result = run(
        "-m", "slotkeras", "predict", "--model", str(folder), "leave taipei on november 2nd"
    )
    line = json.loads(result.stdout.strip().splitlines()[-1])
    assert line["text"] == "leave taipei on november 2nd"
    assert "intent" in line and 0 < line["intent_probability"] <= 1
    for slot in line["slots"]:
        assert set(slot) == {"slot", "value", "start", "end"}
        assert line["text"].split()[slot["start"] : slot["end"]] == slot["value"].split()


def test_bad_flags_and_unreadable_model_folders_exit_2_with_one_line(tmp_path):
    cases = [
        ("train.py", "--units", "-3"),
        ("train.py", "--no-such-flag"),
        ("evaluate.py", "--model", str(tmp_path / "missing")),
        ("-m", "slotkeras", "predict", "--model", str(tmp_path), "hello"),
    ]
    for args in cases:
        result = run(*args, check=False)
        assert result.returncode == 2, args
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


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
        "arrive taipei on november 2nd",
        "leave taipei on november 2nd",
    )
    arrive, leave = (json.loads(line) for line in result.stdout.strip().splitlines()[-2:])
    assert {"slot": "toloc.city_name", "value": "taipei", "start": 1, "end": 2} in arrive["slots"]
    assert {"slot": "fromloc.city_name", "value": "taipei", "start": 1, "end": 2} in leave["slots"]


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
