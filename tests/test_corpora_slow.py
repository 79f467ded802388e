"""Slow: the default configuration on mit_movie_trivia and resume_ner, trained once each.

Run with `python -m pytest -m slow tests/test_corpora_slow.py`; minutes per corpus on 2
CPU cores. Each trains the default (seed 1) with train.py on ../shared/data/CORPUS, as a
user would, and scores the corpus's test split with evaluate.py. The floors are issue
16's test slot F1: 68.5 on mit_movie_trivia, 92.5 on resume_ner, each a margin above the
linear-chain CRF anchor (bench/crf_anchor.py); docs/benchmarks.md has what the default
measured across seeds (`python bench/accuracy.py --corpus CORPUS`).
"""

import json

import pytest
from conftest import ROOT, explain, run

SHARED = ROOT.parent / "shared" / "data"  # read from there, never copied


@pytest.mark.slow
@pytest.mark.parametrize(
    ("corpus", "test_utterances", "floor"),
    [("mit_movie_trivia", 1953, 68.5), ("resume_ner", 477, 92.5)],
)
def test_default_configuration_reaches_its_floor_on_the_test_split(
    corpus, test_utterances, floor, tmp_path
):
    folder = SHARED / corpus
    if not (folder / "train" / "seq.in").is_file():
        pytest.skip(f"{folder} is not here (../shared/data is read, never copied)")
    model = tmp_path / "model"
    result = run(
        ["train.py", "--train", folder, "--output", model, "--seed", "1", "--verbose", "0",
         "--no-export"],
        timeout=3600,
    )  # fmt: skip
    assert result.returncode == 0, explain(result)[-3000:]
    report = tmp_path / "test.json"
    result = run(
        ["evaluate.py", "--model", model, "--data", folder / "test", "--report-json", report],
        timeout=600,
    )
    assert result.returncode == 0, explain(result)[-3000:]
    scores = json.loads(report.read_text())
    assert scores["num_utterances"] == test_utterances
    assert scores["slot_f1"] >= floor, scores["slot_f1"]
