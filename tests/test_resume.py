"""An interrupted run, resumed, ends as the uninterrupted run does: the same weights to
the bit and the same tags on the held-out set. That needs every piece of the run's
state back: the optimizer's step and moments, the weight average, the early-stopping
state, the dropout layers' random-number states, and the data order and word dropout
of the epochs still to come.

The interrupted run is killed with SIGKILL (what `kill -9` sends) right after the
checkpoint of a chosen epoch is written: the process kills itself from a wrapper
around `Checkpoint.save`, so the moment is the same on every machine.
"""

from __future__ import annotations

import csv
import shutil
import signal

import numpy as np
import pytest
from conftest import ROOT, explain, run

KILLED_AFTER = 2
EPOCHS = 3
# Everything with state stays on: dropout, word dropout, weight averaging, the CRF.
TINY = [
    "--units", "8", "--embedding-dim", "8", "--hash-dim", "8", "--hash-buckets", "512",
    "--batch-size", "16", "--verbose", "0", "--no-export", "--seed", "3",
    # The machinery under test, not small-data training: one pass an epoch, no refit.
    "--epoch-utterances", "1", "--no-refit",
]  # fmt: skip
KILL_AFTER_CHECKPOINT = """
import os, signal, sys

from slotkeras.checkpoint import Checkpoint
from slotkeras import cli, model_folder

epoch = int(sys.argv[1])
save = Checkpoint.save


def save_then_die(self, model, state, **arrays):
    save(self, model, state, **arrays)
    if state["epoch"] == epoch:
        os.kill(os.getpid(), signal.SIGKILL)


Checkpoint.save = save_then_die
sys.exit(cli.run_cli(cli.train_main, sys.argv[2:]))
"""


def train_command(*extra) -> list:
    return [
        ROOT / "train.py", "--train", "small.csv", "--output", "models/run",
        "--epochs", str(EPOCHS), "--patience", "100", *TINY, *extra,
    ]  # fmt: skip


def prepare(folder):
    rows = (ROOT / "data" / "train.csv").read_text(encoding="utf-8").splitlines()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "small.csv").write_text("\n".join(rows[:201]) + "\n", encoding="utf-8")
    return folder


def history(folder) -> list[dict]:
    with open(folder / "models" / "run" / "history.csv", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def weights_and_tags(folder):
    from slotkeras.data import read_utterances
    from slotkeras.slot_filler import SlotFiller

    filler = SlotFiller.load(folder / "models" / "run")
    held_out = read_utterances(ROOT / "data" / "test.csv")
    tags = [p.tags for p in filler.predict([u.tokens for u in held_out])]
    return filler.model.get_weights(), tags


def assert_same_model(first, second):
    weights, tags = weights_and_tags(first)
    other_weights, other_tags = weights_and_tags(second)
    assert len(weights) == len(other_weights)
    differing = [
        i for i, (a, b) in enumerate(zip(weights, other_weights)) if not np.array_equal(a, b)
    ]
    assert differing == [], f"{len(differing)} of {len(weights)} weight arrays differ"
    assert tags == other_tags


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An uninterrupted run, and a run killed after the checkpoint of epoch
    `KILLED_AFTER` (its folder, before anything resumed it)."""
    whole = prepare(tmp_path_factory.mktemp("uninterrupted"))
    result = run(train_command(), cwd=whole)
    assert result.returncode == 0, explain(result)
    killed = prepare(tmp_path_factory.mktemp("killed"))
    command = ["-c", KILL_AFTER_CHECKPOINT, KILLED_AFTER, *train_command()[1:]]
    result = run(command, cwd=killed, env={"PYTHONPATH": str(ROOT)})
    assert result.returncode == -signal.SIGKILL, explain(result)
    state = (killed / "models" / ".run.partial" / "state.json").read_text()
    assert f'"epoch": {KILLED_AFTER},' in state
    assert not (killed / "models" / "run").exists()
    return whole, killed


def resume_in_a_copy(killed, name, *extra):
    folder = killed.parent / name
    shutil.copytree(killed, folder)
    return folder, run(train_command(*extra), cwd=folder)


def test_the_resumed_run_is_the_uninterrupted_run(runs):
    whole, killed = runs
    folder, result = resume_in_a_copy(killed, "resumed")
    assert result.returncode == 0, explain(result)
    assert f"Resuming from the checkpoint of epoch {KILLED_AFTER}" in result.stdout
    assert history(folder) == history(whole)  # losses and validation F1, to the last bit
    assert_same_model(folder, whole)


def test_no_resume_starts_over(runs):
    whole, killed = runs
    folder, result = resume_in_a_copy(killed, "no_resume", "--no-resume")
    assert result.returncode == 0, explain(result)
    assert "Resuming" not in result.stdout
    assert [row["epoch"] for row in history(folder)] == [str(e) for e in range(1, EPOCHS + 1)]
    assert_same_model(folder, whole)  # from scratch with the same seed: the same run


@pytest.mark.slow  # over half a minute on 2 cores: .ci/run runs it after the default suite
def test_a_changed_setting_starts_over_and_one_that_may_change_resumes(runs):
    whole, killed = runs
    folder, result = resume_in_a_copy(killed, "changed", "--dropout", "0.3")
    assert result.returncode == 0, explain(result)
    assert "Resuming" not in result.stdout
    rows = history(folder)
    assert [row["epoch"] for row in rows] == [str(e) for e in range(1, EPOCHS + 1)]
    assert rows[0]["loss"] != history(whole)[0]["loss"]  # trained anew, with the new dropout

    folder, result = resume_in_a_copy(killed, "longer", "--epochs", str(EPOCHS + 1))
    assert result.returncode == 0, explain(result)
    assert f"Resuming from the checkpoint of epoch {KILLED_AFTER}" in result.stdout
    rows = history(folder)
    assert rows[:EPOCHS] == history(whole) and len(rows) == EPOCHS + 1
