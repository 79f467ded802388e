"""Slow: the default configuration on ATIS (../shared/data/atis), trained once.

Run with `python -m pytest -m slow`. About 1 to 2 minutes on 2 CPU cores.

The bar is issue 5's: 95.5. Measured with the default of this commit (seed 1, the
one this test trains): 95.56, so it passes, narrowly; seeds 2 and 3 gave 95.36 and
95.25, a mean of 95.39 ± 0.15 (docs/benchmarks.md).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ATIS = ROOT.parent / "shared" / "data" / "atis"


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
