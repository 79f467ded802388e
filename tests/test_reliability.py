"""Reliability: bad input, interrupted training, a non-finite loss, odd serving
input, unseen labels, character-level non-Latin data and determinism.

Every command runs as a user runs it: `train.py`, `evaluate.py` and
`python -m slotkeras predict` in a subprocess, with tiny settings (the machine is
shared). One small model (`base_model`) is trained once for the whole module.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROOT, explain, run, write

TRAIN_PY = str(ROOT / "train.py")
EVALUATE_PY = str(ROOT / "evaluate.py")
PREDICT = ["-m", "slotkeras", "predict"]

# Tiny and fast: the whole file must run in a few minutes on two shared cores.
TINY = [
    "--units", "8", "--layers", "1", "--embedding-dim", "8", "--hash-dim", "8",
    "--hash-buckets", "512", "--batch-size", "64", "--verbose", "0",
    # The machinery under test, not small-data training: one pass an epoch, no refit.
    "--epoch-utterances", "1", "--no-refit",
]  # fmt: skip
SEED = ["--seed", "7"]


def snapshot(root: Path) -> dict:
    """Every file and folder under `root` with its size and modification time."""
    out = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder, name)
            stat = path.lstat()
            out[str(path.relative_to(root))] = (stat.st_size, stat.st_mtime_ns)
    return out


def file_bytes(root: Path) -> dict:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def csv_text(rows, header=("text", "tags", "intent")) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def bundled_rows():
    with open(ROOT / "data" / "train.csv", encoding="utf-8", newline="") as handle:
        return [(r["text"], r["tags"], r["intent"]) for r in csv.DictReader(handle)]


# --------------------------------------------------------------------------------------
# The corpus and the model every test shares
# --------------------------------------------------------------------------------------

UNSEEN_SLOT = "meal_preference"  # never in the training data


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """60 training and 20 validation utterances of the bundled corpus; a held-out file
    with a slot type the training data lacks."""
    folder = tmp_path_factory.mktemp("corpus")
    rows = bundled_rows()
    write(folder / "train.csv", csv_text(rows[:60]))
    write(folder / "valid.csv", csv_text(rows[60:80]))
    seen = {tag for _, tags, _ in rows[:60] for tag in tags.split()}
    known = [row for row in rows[80:] if set(row[1].split()) <= seen][:10]
    slot, city = f"B-{UNSEEN_SLOT}", "B-toloc.city_name"
    assert city in seen
    held_out = known + [
        ("show vegetarian flights to boston", f"O {slot} O O {city}", "atis_flight"),
        ("i want a kosher meal to denver", f"O O O {slot} O O {city}", "atis_flight"),
    ]
    write(folder / "heldout.csv", csv_text(held_out))
    return folder


def base_command(corpus: Path, output) -> list:
    return [
        TRAIN_PY, "--train", corpus / "train.csv", "--valid", corpus / "valid.csv",
        "--output", output, "--epochs", "2", *TINY, *SEED,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def trained_twice(corpus, tmp_path_factory) -> tuple[Path, Path]:
    """The same command run twice at the same time (into two folders): the module's
    model, and its twin for the determinism test."""
    root = tmp_path_factory.mktemp("base")
    outputs = (root / "models" / "base", root / "models" / "twin")
    processes = [
        subprocess.Popen(
            [sys.executable, *map(str, base_command(corpus, output))],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for output in outputs
    ]
    for process in processes:
        log = process.communicate(timeout=600)[0].decode("utf-8", "replace")
        assert process.returncode == 0, log
    return outputs


@pytest.fixture(scope="module")
def base_model(trained_twice) -> Path:
    return trained_twice[0]


# --------------------------------------------------------------------------------------
# 1. Bad input: one line, status 2, no traceback, nothing written
# --------------------------------------------------------------------------------------

HEADER = "text,tags,intent\n"
GOOD_ROWS = (
    "i want to fly to boston,O O O O O B-toloc.city_name,atis_flight\n"
    "show fares from denver,O O O B-fromloc.city_name,atis_airfare\n"
)
GOOD_CSV = HEADER + GOOD_ROWS
TOKENS_HEADER = "sentence_id,token,tag,intent\n"


@dataclass
class Case:
    """One malformed input. `setup(d, model)` writes its files into the case folder `d`
    (a copy of the trained model is at `model` when it needs one) and returns the
    command line; the error line must hold every string of `expect` (with `{d}` the
    case folder)."""

    id: str
    setup: object
    expect: tuple


def train_cmd(d, data, *extra):
    return [TRAIN_PY, "--train", data, "--output", d / "models" / "out", *TINY, *extra]


def evaluate_cmd(d, data, model, *extra):
    return [EVALUATE_PY, "--model", model, "--data", data, "--report-json", d / "out" / "r.json",
            *extra]  # fmt: skip


def predict_cmd(d, data, model, *extra):
    return [*PREDICT, "--model", model, "--file", data, *extra]


def good(d):
    return write(d / "good.csv", GOOD_CSV)


def copy_model(model, d, name="model"):
    return Path(shutil.copytree(model, d / name))


def _corrupt_keras(model, d):
    target = copy_model(model, d)
    (target / "model.keras").write_bytes(b"this is not a zip archive\n" * 40)
    return target


def _truncated_keras(model, d):
    target = _before_the_manifest(model, d)
    payload = (target / "model.keras").read_bytes()
    (target / "model.keras").write_bytes(payload[: len(payload) // 2])
    return target


def _before_the_manifest(model, d):
    """A copy of the model as a folder written before slotkeras kept a manifest."""
    target = copy_model(model, d)
    (target / "manifest.json").unlink()
    return target


def _without(model, d, name):
    target = copy_model(model, d)
    path = target / name
    shutil.rmtree(path) if path.is_dir() else path.unlink()
    return target


def _foreign_labels(model, d):
    target = _before_the_manifest(model, d)
    (target / "labels.json").write_text('{"tags": ["O", "B-x", "I-x"], "intents": []}\n')
    return target


def _broken_labels(model, d):
    target = _before_the_manifest(model, d)
    (target / "labels.json").write_text('{"tags": ["O", "B-x"\n')
    return target


def _edited(model, d, name, manifest=True):
    """A copy whose `name` (labels.json or config.json) has its values changed."""
    target = copy_model(model, d) if manifest else _before_the_manifest(model, d)
    value = json.loads((target / name).read_text())
    if name == "labels.json":
        value["tags"] = [tag.replace("city", "town") for tag in value["tags"]]
    else:
        value["units"] = -5
    (target / name).write_text(json.dumps(value))
    return target


def _linked_out(model, d):
    target = copy_model(model, d)
    (target / "history.csv").unlink()
    (target / "history.csv").symlink_to("/etc/passwd")
    return target


PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10" + bytes(range(256))
XLSX = b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 40 + b"[Content_Types].xml"

CASES = [
    # ---- utterance CSV ----
    Case("csv-missing-column", lambda d, m: train_cmd(
        d, write(d / "a.csv", "text,intent\nfly to boston,atis_flight\n")),
        ("{d}/a.csv", "row 1", "missing column 'tags'")),
    Case("csv-extra-field", lambda d, m: train_cmd(
        d, write(d / "a.csv", GOOD_CSV + "fly to boston,O O B-toloc.city_name,atis_flight,x\n")),
        ("{d}/a.csv", "row 4", "4 fields but the header has 3 columns")),
    Case("csv-duplicate-column", lambda d, m: train_cmd(
        d, write(d / "a.csv", "text,tags,text\nfly,O,fly\n")),
        ("{d}/a.csv", "row 1", "column 'text' appears 2 times")),
    Case("csv-count-mismatch", lambda d, m: evaluate_cmd(
        d, write(d / "a.csv", GOOD_CSV + "fly to boston,O O,atis_flight\n"), m),
        ("{d}/a.csv", "row 4", "3 tokens but 2 tags")),
    Case("csv-empty-text", lambda d, m: train_cmd(
        d, write(d / "a.csv", HEADER + ",O,atis_flight\n" + GOOD_ROWS)),
        ("{d}/a.csv", "row 2", "empty text")),
    Case("csv-tags-on-some-rows", lambda d, m: evaluate_cmd(
        d, write(d / "a.csv", GOOD_CSV + "fly to boston,,atis_flight\n"), m),
        ("{d}/a.csv", "row 4", "empty tags")),
    Case("csv-nan-cell", lambda d, m: train_cmd(
        d, write(d / "a.csv", GOOD_CSV + "fly to boston,nan,atis_flight\n")),
        ("{d}/a.csv", "row 4", "missing value 'nan'")),
    Case("csv-stray-quote", lambda d, m: train_cmd(
        d, write(d / "a.csv", GOOD_CSV + '"fly to boston,O O B-toloc.city_name,atis_flight\n')),
        ("{d}/a.csv", "row 4", "CSV quoting error")),
    Case("csv-invalid-utf8", lambda d, m: train_cmd(
        d, write(d / "a.csv", GOOD_CSV.encode() + b"fly to b\xf6ston,O O B-x,atis_flight\n")),
        ("{d}/a.csv", "line 4", "not valid UTF-8")),
    Case("csv-utf16", lambda d, m: train_cmd(
        d, write(d / "a.csv", GOOD_CSV.encode("utf-16"))),
        ("{d}/a.csv", "UTF-16")),
    Case("csv-not-bio", lambda d, m: train_cmd(
        d, write(d / "a.csv", GOOD_CSV + "fly to boston,O O X-city,atis_flight\n")),
        ("{d}/a.csv", "row 4", "invalid tag 'X-city'")),
    Case("csv-header-only", lambda d, m: evaluate_cmd(d, write(d / "a.csv", HEADER), m),
         ("{d}/a.csv", "no data rows")),
    Case("csv-empty-file", lambda d, m: predict_cmd(d, write(d / "a.csv", ""), m),
         ("{d}/a.csv", "empty file")),
    Case("binary-file", lambda d, m: evaluate_cmd(d, write(d / "a.csv", PNG), m),
         ("{d}/a.csv", "binary file")),
    Case("excel-workbook", lambda d, m: predict_cmd(d, write(d / "a.csv", XLSX), m),
         ("{d}/a.csv", "zip archive")),
    Case("missing-file", lambda d, m: train_cmd(d, d / "nowhere.csv"),
         ("{d}/nowhere.csv", "no such file")),
    Case("bad-valid-file", lambda d, m: train_cmd(
        d, good(d), "--valid", write(d / "v.csv", GOOD_CSV + "a b,O,atis_flight\n")),
        ("{d}/v.csv", "row 4", "2 tokens but 1 tag")),
    Case("bad-test-file", lambda d, m: train_cmd(
        d, good(d), "--valid", good(d), "--test", write(d / "t.csv", GOOD_CSV + "a,I_x,f\n")),
        ("{d}/t.csv", "row 4", "invalid tag 'I_x'")),
    # ---- token CSV ----
    Case("tokens-not-contiguous", lambda d, m: train_cmd(d, write(d / "t.csv", TOKENS_HEADER + (
        "1,fly,O,f\n2,hi,O,g\n1,boston,B-toloc.city_name,f\n"))),
        ("{d}/t.csv", "row 4", "reappears")),
    Case("tokens-intent-varies", lambda d, m: evaluate_cmd(d, write(d / "t.csv", TOKENS_HEADER + (
        "1,fly,O,f\n1,boston,B-toloc.city_name,g\n")), m),
        ("{d}/t.csv", "row 3", "differs")),
    Case("tokens-whitespace-token", lambda d, m: predict_cmd(d, write(d / "t.csv", TOKENS_HEADER + (
        '1,fly,O,f\n1,"new york",B-toloc.city_name,f\n')), m),
        ("{d}/t.csv", "row 3", "contains whitespace")),
    Case("tokens-missing-tag", lambda d, m: train_cmd(d, write(d / "t.csv", TOKENS_HEADER + (
        "1,fly,O,f\n1,boston,,f\n"))),
        ("{d}/t.csv", "row 3", "empty tag")),
    # ---- seq.in / seq.out folders ----
    Case("folder-line-counts", lambda d, m: train_cmd(d, write(d / "atis", {
        "seq.in": "fly to boston\nhi\n", "seq.out": "O O B-toloc.city_name\nO\nO\n"})),
        ("{d}/atis/seq.out", "line 3", "seq.out has 3 lines but seq.in has 2")),
    Case("folder-no-seq-out", lambda d, m: evaluate_cmd(d, write(d / "atis", {
        "seq.in": "fly to boston\n"}), m),
        ("{d}/atis", "no seq.out")),
    Case("folder-count-mismatch", lambda d, m: train_cmd(d, write(d / "atis", {
        "seq.in": "fly to boston\nhi there\n", "seq.out": "O O B-toloc.city_name\nO\n"})),
        ("{d}/atis/seq.out", "line 2", "2 tokens but 1 tag")),
    Case("folder-splits-bad-label", lambda d, m: train_cmd(d, write(d / "atis", {
        "train": {"seq.in": "fly\nhi\n", "seq.out": "O\nO\n"},
        "test": {"seq.in": "fly\n", "seq.out": "O\n", "label": "a\nb\n"}})),
        ("{d}/atis/test/label", "line 2", "label has 2 lines but seq.in has 1")),
    Case("folder-instead-of-file", lambda d, m: predict_cmd(d, write(d / "empty", {}), m),
         ("{d}/empty", "no seq.in")),
    Case("folder-for-csv-format", lambda d, m: evaluate_cmd(
        d, write(d / "empty", {}), m, "--format", "utterance_csv"),
        ("{d}/empty", "is a folder, expected a file")),
    # ---- CoNLL ----
    Case("conll-no-tag", lambda d, m: train_cmd(d, write(d / "a.conll", "fly O\nto O\nboston\n")),
         ("{d}/a.conll", "line 3", "expected a token and a tag")),
    Case("conll-not-bio", lambda d, m: evaluate_cmd(
        d, write(d / "a.conll", "fly O\nboston city\n"), m),
        ("{d}/a.conll", "line 2", "invalid tag 'city'")),
    Case("conll-only-docstart", lambda d, m: predict_cmd(
        d, write(d / "a.conll", "-DOCSTART- O\n\n"), m),
        ("{d}/a.conll", "no sentences")),
    # ---- flags ----
    Case("train-unknown-flag", lambda d, m: train_cmd(d, good(d), "--colour", "red"),
         ("unrecognized arguments: --colour",)),
    Case("train-bad-int", lambda d, m: train_cmd(d, good(d), "--epochs", "zero"),
         ("--epochs", "'zero'")),
    Case("train-bad-rate", lambda d, m: train_cmd(d, good(d), "--dropout", "1.5"),
         ("--dropout", "'1.5'")),
    Case("train-bad-choice", lambda d, m: train_cmd(d, good(d), "--model", "rnn"),
         ("--model", "invalid choice: 'rnn'")),
    Case("train-bad-optimizer", lambda d, m: train_cmd(d, good(d), "--optimizer", "sgd"),
         ("--optimizer", "invalid choice: 'sgd'")),
    Case("train-bad-averaging", lambda d, m: train_cmd(d, good(d), "--weight-averaging", "1"),
         ("--weight-averaging", "'1'")),
    Case("train-bad-intent-weight",
         lambda d, m: train_cmd(d, good(d), "--intent-loss-weight", "-1"),
         ("--intent-loss-weight", "'-1'")),
    Case("train-bad-decay",
         lambda d, m: train_cmd(d, good(d), "--learning-rate-decay", "0"),
         ("--learning-rate-decay", "'0'")),
    Case("evaluate-bad-batch", lambda d, m: evaluate_cmd(d, good(d), m, "--batch-size", "-3"),
         ("--batch-size", "'-3'")),
    Case("predict-unknown-flag", lambda d, m: predict_cmd(d, good(d), m, "--temperature", "2"),
         ("unrecognized arguments: --temperature",)),
    Case("predict-nothing", lambda d, m: [*PREDICT, "--model", m],
         ("give utterances or --file",)),
    # ---- --config ----
    Case("config-broken-json", lambda d, m: train_cmd(
        d, good(d), "--config", write(d / "c.json", '{"epochs": 1,\n')),
        ("{d}/c.json", "not a readable JSON file")),
    Case("config-unknown-key", lambda d, m: train_cmd(
        d, good(d), "--config", write(d / "c.json", '{"epochs": 1, "colour": "red"}')),
        ("{d}/c.json", "unknown setting(s) colour")),
    Case("config-not-object", lambda d, m: train_cmd(
        d, good(d), "--config", write(d / "c.json", "[1, 2]")),
        ("{d}/c.json", "expected a JSON object")),
    Case("config-is-folder", lambda d, m: train_cmd(
        d, good(d), "--config", write(d / "conf", {})),
        ("{d}/conf", "not a readable JSON file")),
    Case("config-wrong-type", lambda d, m: train_cmd(
        d, good(d), "--config", write(d / "c.json", '{"dropout": "lots"}')),
        ("`dropout`", "'lots'")),
    Case("config-bad-averaging", lambda d, m: train_cmd(
        d, good(d), "--config", write(d / "c.json", '{"weight_averaging": 1.5}')),
        ("`weight_averaging`", "1.5")),
    # ---- model folders ----
    Case("model-missing", lambda d, m: evaluate_cmd(d, good(d), d / "nomodel"),
         ("{d}/nomodel", "no such model folder")),
    Case("model-is-file", lambda d, m: predict_cmd(d, good(d), good(d)),
         ("{d}/good.csv", "is a file, expected a model folder")),
    Case("model-missing-keras", lambda d, m: evaluate_cmd(
        d, good(d), _without(m, d, "model.keras")),
        ("{d}/model", "missing model.keras")),
    Case("model-missing-labels", lambda d, m: predict_cmd(
        d, good(d), _without(m, d, "labels.json")),
        ("{d}/model", "missing labels.json")),
    Case("model-corrupt-keras", lambda d, m: predict_cmd(d, good(d), _corrupt_keras(m, d)),
         ("{d}/model/model.keras does not match the manifest: damaged or replaced",)),
    Case("model-truncated-keras", lambda d, m: evaluate_cmd(d, good(d), _truncated_keras(m, d)),
         ("{d}/model/model.keras", "cannot be loaded", "damaged")),
    Case("model-renamed-tags", lambda d, m: evaluate_cmd(d, good(d), _edited(m, d, "labels.json")),
         ("{d}/model/labels.json does not match the manifest",)),
    Case("model-renamed-tags-unlisted", lambda d, m: predict_cmd(
        d, good(d), _edited(m, d, "labels.json", manifest=False)),
        ("{d}/model/labels.json", "not those model.keras was trained on")),
    Case("model-bad-config", lambda d, m: predict_cmd(
        d, good(d), _edited(m, d, "config.json", manifest=False)),
        ("{d}/model/config.json", "invalid value for `units`")),
    Case("model-link-out", lambda d, m: predict_cmd(d, good(d), _linked_out(m, d)),
         ("{d}/model/history.csv", "a link to /etc/passwd, outside the model folder")),
    Case("model-broken-labels", lambda d, m: predict_cmd(d, good(d), _broken_labels(m, d)),
         ("{d}/model/labels.json", "not a readable JSON file")),
    Case("model-foreign-labels", lambda d, m: evaluate_cmd(d, good(d), _foreign_labels(m, d)),
         ("{d}/model/labels.json", "3 tags but model.keras predicts", "different models")),
    # ---- outputs ----
    Case("output-is-file", lambda d, m: [*train_cmd(d, good(d)), "--output", good(d)],
         ("--output {d}/good.csv", "is a file")),
    Case("output-under-file", lambda d, m: [*train_cmd(d, good(d)), "--output", d / "good.csv/m"],
         ("{d}/good.csv is a file",)),
    Case("output-foreign-folder", lambda d, m: [
        *train_cmd(d, good(d)), "--output", write(d / "notes", {"todo.txt": "keep me"})],
        ("--output {d}/notes", "holds no model")),
    Case("report-json-is-folder", lambda d, m: [
        *evaluate_cmd(d, good(d), m), "--report-json", write(d / "rep", {})],
        ("--report-json {d}/rep", "is a folder")),
    Case("errors-under-file", lambda d, m: [
        *evaluate_cmd(d, good(d), m), "--errors", d / "good.csv" / "e.txt"],
        ("--errors", "{d}/good.csv is a file")),
]  # fmt: skip


@pytest.fixture(scope="module")
def catalogue(base_model, tmp_path_factory):
    """Runs every case (a few at a time: most exit before TensorFlow is imported) and
    returns case id -> (case folder, result, tree before, tree after)."""
    root = tmp_path_factory.mktemp("bad_input")
    model_before = file_bytes(base_model)
    prepared = {}
    for case in CASES:
        d = root / case.id
        d.mkdir()
        argv = case.setup(d, base_model)
        prepared[case.id] = (d, argv, snapshot(d))

    def one(case_id):
        d, argv, before = prepared[case_id]
        # The case folder is the working directory, so relative defaults land in it.
        result = run(argv, cwd=d, timeout=240)
        return case_id, (d, result, before, snapshot(d))

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(pool.map(one, list(prepared)))
    assert file_bytes(base_model) == model_before, "a bad-input run changed the model"
    return results


def test_catalogue_is_large_and_distinct():
    assert len(CASES) >= 25
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input(case, catalogue):
    d, result, before, after = catalogue[case.id]
    report = explain(result)
    assert result.returncode == 2, report
    assert "Traceback" not in result.stdout + result.stderr, report
    lines = result.stderr.splitlines()
    assert len(lines) == 1, report
    line = lines[0]
    assert line.startswith("error: "), report
    for expected in case.expect:
        assert expected.format(d=d) in line, f"{expected!r} not in {line!r}"
    # Nothing written: no output folder, no work folder, no report, nothing printed.
    assert after == before, report
    assert not (d / "models").exists()
    assert not (d / "out").exists()
    assert result.stdout == "", report


# --------------------------------------------------------------------------------------
# 2. Interrupted training resumes; an existing model survives a killed retrain
# --------------------------------------------------------------------------------------


def _epoch(state: Path) -> int:
    try:
        return json.loads(state.read_text())["epoch"]
    except (OSError, ValueError, KeyError):
        return 0


def _checkpoint_epoch(folder: Path) -> int:
    """The epoch of the checkpoint itself. `state.json` is a copy written after it, so
    a kill between the two writes leaves the copy an epoch behind, and a resumed run
    goes on from the checkpoint's."""
    import numpy as np

    with np.load(folder / "checkpoint.npz") as arrays:
        return json.loads(str(arrays["state"]))["epoch"]


def _wait_for_epoch(process, state: Path, epoch: int, timeout: float = 240) -> float:
    deadline = time.monotonic() + timeout
    while _epoch(state) < epoch:
        assert process.poll() is None, f"training ended before epoch {epoch}"
        assert time.monotonic() < deadline, f"no epoch {epoch} after {timeout} s"
        time.sleep(0.05)
    return time.monotonic()


@pytest.mark.slow  # over half a minute on 2 cores: .ci/run runs it after the default suite
def test_killed_training_resumes_and_keeps_the_old_model(corpus, base_model, tmp_path):
    epochs = 8
    work = tmp_path
    existing = shutil.copytree(base_model, work / "models" / "run")
    old_files = file_bytes(existing)
    command = [
        TRAIN_PY, "--train", corpus / "train.csv", "--valid", corpus / "valid.csv",
        "--output", "models/run", "--epochs", str(epochs), "--patience", "100", *TINY, *SEED,
    ]  # fmt: skip
    state = work / "models" / ".run.partial" / "state.json"
    rng = random.Random()
    log = (work / "first.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, *map(str, command)], cwd=work, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        first = _wait_for_epoch(process, state, 1)
        second = _wait_for_epoch(process, state, 2)
        # A random moment, while epochs 3..8 are still to come.
        delay = rng.uniform(0, 2 * (second - first))
        time.sleep(delay)
        assert process.poll() is None, "training finished before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        log.close()
    assert process.returncode == -signal.SIGKILL
    # The complete model that was there is untouched, the checkpoint is aside.
    assert file_bytes(existing) == old_files
    done = _checkpoint_epoch(state.parent)
    assert 2 <= done < epochs, (work / "first.log").read_text(errors="replace")

    result = run(command, cwd=work)
    assert result.returncode == 0, explain(result)
    assert f"Resuming from the checkpoint of epoch {done}" in result.stdout, explain(result)
    model = work / "models" / "run"
    for name in ("model.keras", "config.json", "labels.json", "history.csv", "metrics.json"):
        assert (model / name).is_file(), name
    assert (model / "saved_model" / "saved_model.pb").is_file()
    with open(model / "history.csv", encoding="utf-8") as handle:
        history = list(csv.DictReader(handle))
    assert [int(row["epoch"]) for row in history] == list(range(1, epochs + 1))
    metrics = json.loads((model / "metrics.json").read_text())
    assert metrics["epochs_trained"] == epochs
    assert json.loads((model / "config.json").read_text())["epochs"] == epochs
    leftovers = [p.name for p in (work / "models").iterdir() if p.name != "run"]
    assert leftovers == [], leftovers


# --------------------------------------------------------------------------------------
# 3. A non-finite loss
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def same_length_corpus(tmp_path_factory) -> Path:
    """Utterances of one length: with --batch-size 64 an epoch is exactly one step, so
    epoch 1's loss is measured before the first update and is finite."""
    folder = tmp_path_factory.mktemp("same_length")
    rows = [row for row in bundled_rows() if len(row[0].split()) == 7][:54]
    assert len(rows) == 54
    write(folder / "train.csv", csv_text(rows[:48]))
    write(folder / "valid.csv", csv_text(rows[48:]))
    return folder


def _nan_command(corpus, *extra):
    # Adam moves every weight by about the learning rate: at 1e38 the next forward pass
    # overflows float32 (the loss is a real inf/NaN, not a test hook).
    return [
        TRAIN_PY, "--train", corpus / "train.csv", "--valid", corpus / "valid.csv",
        "--output", "models/nan", "--epochs", "4", "--learning-rate", "1e38",
        *TINY, *SEED, *extra,
    ]  # fmt: skip


def test_non_finite_loss_keeps_the_last_good_epoch(same_length_corpus, tmp_path):
    result = run(_nan_command(same_length_corpus), cwd=tmp_path)
    assert result.returncode == 0, explain(result)
    assert "Traceback" not in result.stdout + result.stderr
    messages = [line for line in result.stdout.splitlines() if "loss became" in line]
    assert len(messages) == 1, explain(result)
    assert messages[0].startswith("warning: training loss became")
    assert "in epoch 2; stopped and kept the model of epoch 1" in messages[0]
    model = tmp_path / "models" / "nan"
    metrics = json.loads((model / "metrics.json").read_text())
    assert metrics["best_epoch"] == 1 and metrics["epochs_trained"] == 1
    assert "loss became" in metrics["failure"]
    with open(model / "history.csv", encoding="utf-8") as handle:
        history = list(csv.DictReader(handle))
    assert len(history) == 1 and float(history[0]["loss"]) < 1e6
    assert (model / "model.keras").is_file() and (model / "saved_model").is_dir()
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["nan"]


def test_non_finite_loss_in_the_first_epoch_writes_nothing(same_length_corpus, tmp_path):
    # Batches of 4: the loss of epoch 1 already includes steps after the blow-up.
    result = run(_nan_command(same_length_corpus, "--batch-size", "4"), cwd=tmp_path)
    assert result.returncode == 1, explain(result)
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, explain(result)
    assert "training loss became" in lines[0] and "before any good epoch" in lines[0]
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


# --------------------------------------------------------------------------------------
# 4. Serving: odd input through the SavedModel
# --------------------------------------------------------------------------------------

ODD_INPUTS = [
    "",
    "   \t  ",
    " ".join(["boston"] * 1000),
    "我 要 从 台 北 飞 到 东 京 😀 ✈️ 🇹🇼",
    "Leave TAIPEI On NoVeMbEr 2ND",
    "fly to " + "x" * 200,
    "é" * 200,
]


def _check_serving(out, texts, tags_allowed, has_intent=True):
    import numpy as np

    tokens = out["tokens"].numpy()
    tags = out["tags"].numpy()
    assert tokens.shape == tags.shape and tokens.ndim == 2
    assert tokens.shape[0] == len(texts)
    assert np.array_equal(tokens == b"", tags == b"")
    for row, text in enumerate(texts):
        words = [t.decode("utf-8") for t in tokens[row] if t]
        assert words == text.split()
        assert all(t.decode("utf-8") in tags_allowed for t in tags[row] if t)
    if has_intent:
        assert out["intent"].numpy().shape == (len(texts),)
        assert all(out["intent"].numpy())


@pytest.fixture(scope="module")
def tf_quiet():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return tf


def test_serving_survives_odd_input(base_model, tf_quiet):
    tf = tf_quiet
    serve = tf.saved_model.load(str(base_model / "saved_model")).signatures["serve"]
    tags = json.loads((base_model / "labels.json").read_text())["tags"]
    for text in ODD_INPUTS:
        _check_serving(serve(tf.constant([text])), [text], tags)
    _check_serving(serve(tf.constant(ODD_INPUTS)), ODD_INPUTS, tags)
    mixed = serve(tf.constant(["Leave TAIPEI", "leave taipei"]))["tags"].numpy()
    assert list(mixed[0]) == list(mixed[1])  # lowercased before lookup and hashing


# --------------------------------------------------------------------------------------
# 5. Slot types unseen in training
# --------------------------------------------------------------------------------------


def test_unseen_slot_types_are_counted_and_listed(base_model, corpus, tmp_path):
    report = tmp_path / "report.json"
    result = run(
        [EVALUATE_PY, "--model", base_model, "--data", corpus / "heldout.csv",
         "--report-json", report],
        cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, explain(result)
    assert "Traceback" not in result.stdout + result.stderr
    data = json.loads(report.read_text())
    assert data["unseen_slots"] == [UNSEEN_SLOT]  # the other rows use known slots only
    assert data["slot_recall"] < 100
    assert data["per_slot"][UNSEEN_SLOT]["support"] == 2
    assert data["per_slot"][UNSEEN_SLOT]["recall"] == 0
    assert f"slot types not seen in training: {UNSEEN_SLOT}" in result.stdout


# --------------------------------------------------------------------------------------
# 6. Character-level Chinese
# --------------------------------------------------------------------------------------

CITIES = ["台北", "东京", "上海", "北京", "香港", "首尔", "大阪", "新加坡", "高雄"]
DAYS = ["明天", "后天", "今天"]


def _chars(word, slot):
    return list(word), [f"B-{slot}"] + [f"I-{slot}"] * (len(word) - 1)


def chinese_corpus() -> list:
    """Booking requests, one character per token: `我 要 从 台 北 飞 到 东 京`."""
    rng = random.Random(0)
    rows = []
    pairs = [(a, b) for a in CITIES for b in CITIES if a != b]
    rng.shuffle(pairs)
    for i, (src, dst) in enumerate(pairs[:72]):
        kind = i % 3
        if kind == 0:
            parts = [("我要从", "O"), (src, "fromloc.city_name"), ("飞到", "O"),
                     (dst, "toloc.city_name")]  # fmt: skip
            intent = "atis_flight"
        elif kind == 1:
            parts = [(DAYS[(i // 3) % 3], "depart_date.date_relative"), ("从", "O"),
                     (src, "fromloc.city_name"), ("到", "O"), (dst, "toloc.city_name"),
                     ("的航班", "O")]  # fmt: skip
            intent = "atis_flight"
        else:
            parts = [("从", "O"), (src, "fromloc.city_name"), ("到", "O"),
                     (dst, "toloc.city_name"), ("的机票多少钱", "O")]  # fmt: skip
            intent = "atis_airfare"
        tokens, tags = [], []
        for word, slot in parts:
            chars = list(word)
            tokens += chars
            tags += ["O"] * len(chars) if slot == "O" else _chars(word, slot)[1]
        rows.append((" ".join(tokens), " ".join(tags), intent))
    return rows


# Floors well below what the tiny model reaches on the 16 held-out rows whatever the
# seed, and far above what tagging every character O scores (slot F1 0; token accuracy
# 55, the share of O characters). Batches of 2 give it enough steps in a few epochs.
MIN_CHINESE_SLOT_F1 = 60
MIN_CHINESE_TOKEN_ACCURACY = 85


def test_chinese_characters_train_evaluate_and_serve(tmp_path, tf_quiet):
    rows = chinese_corpus()
    assert len(rows) == 72
    write(tmp_path / "train.csv", csv_text(rows[:56]))
    write(tmp_path / "test.csv", csv_text(rows[56:]))
    result = run(
        [TRAIN_PY, "--train", "train.csv", "--test", "test.csv", "--output", "models/zh",
         "--epochs", "10", *TINY, "--batch-size", "2", *SEED],
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, explain(result)
    assert "Held-out report (test.csv)" in result.stdout
    # Written one character a token: the bundled lexicon marks the words it knows.
    assert "Lexicon matches marked from" in result.stdout + result.stderr
    model = tmp_path / "models" / "zh"
    labels = json.loads((model / "labels.json").read_text(encoding="utf-8"))
    # Every span here is two or three characters long: the model learns BIOES tags
    # (labels.json keeps them) and answers in the data's BIO.
    assert json.loads((model / "metrics.json").read_text())["tag_scheme"] == "bioes"
    assert {"B-fromloc.city_name", "I-toloc.city_name", "E-toloc.city_name"} <= set(labels["tags"])
    bio_tags = [t for t in labels["tags"] if t[:2] not in ("E-", "S-")]

    report = tmp_path / "report.json"
    result = run(
        [EVALUATE_PY, "--model", model, "--data", "test.csv", "--report-json", report],
        cwd=tmp_path,
    )
    assert result.returncode == 0, explain(result)
    data = json.loads(report.read_text())
    assert data["num_utterances"] == 16 and data["unseen_slots"] == []
    assert "fromloc.city_name" in data["per_slot"]
    # It has learned to tag Chinese characters, spans of several of them included.
    assert data["slot_f1"] >= MIN_CHINESE_SLOT_F1, data
    assert data["token_accuracy"] >= MIN_CHINESE_TOKEN_ACCURACY, data

    tf = tf_quiet
    serve = tf.saved_model.load(str(model / "saved_model")).signatures["serve"]
    texts = ["我 要 从 台 北 飞 到 东 京", "从 新 加 坡 到 高 雄 的 机 票 多 少 钱", ""]
    out = serve(tf.constant(texts))
    _check_serving(out, texts, bio_tags)
    assert [t.decode() for t in out["tokens"].numpy()[0] if t] == list("我要从台北飞到东京")
    from slotkeras.slot_filler import SlotFiller

    filler = SlotFiller.load(model)
    served = [[t.decode() for t in row if t] for row in out["tags"].numpy()]
    assert served == [p.tags for p in filler.tag_text(texts)]
    assert {i.decode() for i in out["intent"].numpy()} <= set(labels["intents"])
    # Decoding keeps to BIOES: no span continued from outside one or left open.
    from slotkeras.decoding import find_crf
    from slotkeras.layers.crf import allowed_transitions

    assert find_crf(filler.model).tag_names == labels["tags"]
    follows, starts, ends = allowed_transitions(labels["tags"])
    tag_ids, *_ = filler.predict_ids([t.split() for t in texts[:2]])
    for ids in tag_ids:
        assert starts[ids[0]] and ends[ids[-1]], ids
        assert all(follows[a, b] for a, b in zip(ids[:-1], ids[1:], strict=True)), ids


# --------------------------------------------------------------------------------------
# 7. Determinism
# --------------------------------------------------------------------------------------


def test_same_seed_same_model(corpus, trained_twice):
    base, twin = trained_twice  # the same command, run twice at the same time
    # The whole training curve (losses to the last bit) and the validation figures.
    assert (twin / "history.csv").read_text() == (base / "history.csv").read_text()
    first = json.loads((base / "metrics.json").read_text())
    second = json.loads((twin / "metrics.json").read_text())
    assert first["validation"] == second["validation"]
    assert first["validation"]["slot_f1"] == second["validation"]["slot_f1"]

    def predictions(model):
        result = run([*PREDICT, "--model", model, "--file", corpus / "valid.csv"], cwd=ROOT)
        assert result.returncode == 0, explain(result)
        return result.stdout

    with ThreadPoolExecutor(max_workers=2) as pool:
        first, second = pool.map(predictions, (base, twin))
    assert first == second
    assert len(first.splitlines()) == 20
