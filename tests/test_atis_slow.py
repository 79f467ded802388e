"""Slow: the default configuration on ATIS (../shared/data/atis), trained once.

Run with `python -m pytest -m slow`; a minute or two on 2 CPU cores. The floors are
issue 16's ATIS bars (a mean of 3 seeds: slot F1 95.4, intent accuracy 96.5) less 1,
since one seed varies, as in tests/test_corpora_slow.py; docs/benchmarks.md has what the
default measured across seeds.
"""

import json
import os
import subprocess
import sys

import pytest
from conftest import ATIS, ROOT


@pytest.mark.slow
def test_default_configuration_reaches_its_floors_on_the_atis_test_split(tmp_path):
    if not (ATIS / "train" / "seq.in").is_file():
        pytest.fail(f"ATIS is expected at {ATIS} (see ../shared/data/README.md)")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    model = tmp_path / "atis"
    subprocess.run(
        [
            sys.executable,
            "train.py",
            "--train",
            str(ATIS),
            "--output",
            str(model),
            "--verbose",
            "0",
            "--no-export",
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=1800,
    )
    report = tmp_path / "test.json"
    subprocess.run(
        [
            sys.executable,
            "evaluate.py",
            "--model",
            str(model),
            "--data",
            str(ATIS / "test"),
            "--report-json",
            str(report),
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )
    result = json.loads(report.read_text())
    assert result["num_utterances"] == 893
    assert result["slot_f1"] >= 94.4, result["slot_f1"]
    assert result["intent_accuracy"] >= 95.5, result["intent_accuracy"]
