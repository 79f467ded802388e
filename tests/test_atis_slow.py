"""Slow: the default configuration on ATIS (../shared/data/atis), trained once.

Run with `python -m pytest -m slow`; a minute or two on 2 CPU cores. The bar is a test
slot F1 of 95.5; docs/benchmarks.md has what the default measured across seeds.
"""

import json
import os
import subprocess
import sys

import pytest
from conftest import ATIS, ROOT


@pytest.mark.slow
def test_default_configuration_reaches_95_5_test_f1_on_atis(tmp_path):
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
    assert result["slot_f1"] >= 95.5, result["slot_f1"]
