"""Data-parallel training with tf.distribute (docs/distributed.md).

Two workers on 127.0.0.1 (CPU), started with the same command line as a user would
on two machines; only TF_CONFIG differs. The chief (worker 0) writes the model
folder; the other worker writes nothing; both end with the same weights.
"""

import csv
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, free_ports

TINY = [
    "--epochs", "2", "--batch-size", "4", "--units", "8", "--layers", "1",
    "--embedding-dim", "8", "--hash-dim", "8", "--hash-buckets", "512",
    "--verbose", "0", "--output-layer", "softmax",
    # The machinery under test, not small-data training: one pass an epoch, no refit.
    "--epoch-utterances", "1", "--no-refit",
]  # fmt: skip
DIGEST = re.compile(r"final weights sha256 ([0-9a-f]{64})")
TIMEOUT = 300  # seconds for a whole run of both workers (~20 s on an idle 2-core machine)


def small_csv(folder: Path, utterances: int = 100) -> Path:
    lines = (ROOT / "data" / "train.csv").read_text(encoding="utf-8").splitlines()
    path = folder / "small.csv"
    path.write_text("\n".join(lines[: utterances + 1]) + "\n", encoding="utf-8")
    return path


def start_workers(cwd: Path, args: list[str], tag: str, count: int = 2) -> list:
    """`count` processes of `train.py ARGS --strategy multi_worker`, one TF_CONFIG each."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(count)]}
    workers = []
    for index in range(count):
        tf_config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        env = {
            **os.environ,
            "TF_CONFIG": json.dumps(tf_config),
            "CUDA_VISIBLE_DEVICES": "",  # two processes on one machine: CPU only
            "TF_CPP_MIN_LOG_LEVEL": "3",
        }
        log = cwd / f"{tag}-worker-{index}.log"
        command = [sys.executable, str(ROOT / "train.py"), *args, "--strategy", "multi_worker"]
        with open(log, "w") as out:
            process = subprocess.Popen(
                command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        workers.append((process, log))
    return workers


def wait_for(workers, timeout: float = TIMEOUT) -> list[str]:
    """Waits for every worker; on a timeout or a failure kills the others (a worker
    left alone waits for its peers for ever, deaf to SIGTERM) and fails with their
    output. Returns their outputs."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            codes = [process.poll() for process, _ in workers]
            if None not in codes or any(code not in (None, 0) for code in codes):
                break
            time.sleep(0.2)
    finally:
        for process, _ in workers:
            if process.poll() is None:
                process.kill()
                process.wait()
    outputs = [log.read_text(errors="replace") for _, log in workers]
    codes = [process.returncode for process, _ in workers]
    if codes != [0] * len(workers):
        tails = "\n".join(f"--- worker {i} (exit {c}):\n{o[-3000:]}" for i, (c, o) in
                          enumerate(zip(codes, outputs, strict=True)))  # fmt: skip
        raise AssertionError(f"workers exited {codes} (timeout {timeout} s)\n{tails}")
    return outputs


def digests(outputs: list[str]) -> list[str]:
    found = [DIGEST.findall(output) for output in outputs]
    assert all(len(f) == 1 for f in found), outputs
    return [f[0] for f in found]


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    """One two-worker run, shared by the checks below."""
    cwd = tmp_path_factory.mktemp("two_workers")
    small_csv(cwd)
    # Up to 3 epochs with patience 1: early stopping (when it happens) must stop
    # every worker after the same epoch, or the others would wait for ever.
    args = ["--train", "small.csv", "--output", "models/tagger", *TINY]
    args += ["--epochs", "3", "--patience", "1"]
    started = time.monotonic()
    outputs = wait_for(start_workers(cwd, args, "run"))
    return cwd, outputs, time.monotonic() - started


def test_two_workers_finish_with_identical_weights(two_workers):
    cwd, outputs, _ = two_workers
    chief, worker = outputs
    assert "task worker-0 (chief: writes the model folder)" in chief
    assert "task worker-1 (writes no model)" in worker
    assert "strategy MultiWorkerMirroredStrategy, 2 replica(s)" in chief
    assert "2 replica(s)" in worker
    assert "Saved models/tagger" in chief and "Saved" not in worker
    first, second = digests(outputs)
    assert first == second


def test_only_the_chief_writes_and_its_model_folder_serves(two_workers):
    import tensorflow as tf

    from slotkeras.distributed import weights_digest
    from slotkeras.slot_filler import SlotFiller

    cwd, outputs, _ = two_workers
    models = cwd / "models"
    assert sorted(p.name for p in models.iterdir()) == ["tagger"]  # no scratch folder left
    folder = models / "tagger"
    for name in ("model.keras", "config.json", "labels.json", "history.csv", "metrics.json"):
        assert (folder / name).is_file(), name
    history = (folder / "history.csv").read_text().splitlines()
    metrics = json.loads((folder / "metrics.json").read_text())
    assert len(history) == 1 + metrics["epochs_trained"]  # written once, by the chief
    assert metrics["stopped_early"] == (metrics["epochs_trained"] < 3)
    assert json.loads((folder / "config.json").read_text())["strategy"] == "multi_worker"

    serve = tf.saved_model.load(str(folder / "saved_model")).signatures["serve"]
    out = serve(tf.constant(["leave taipei on november 2nd"]))
    assert out["tokens"].shape == (1, 5) and out["tags"].shape == (1, 5)
    assert out["tokens"].numpy()[0, 1] == b"taipei"

    # The digest the workers printed is the one of the weights in the folder.
    assert weights_digest(SlotFiller.load(folder).model) == digests(outputs)[0]


# Slow: over half a minute; .ci/run runs it after the default suite.
@pytest.mark.slow
def test_the_worker_follows_the_chief_when_resuming(tmp_path):
    """Both workers killed after a checkpoint, the worker's scratch folder lost (a
    replaced machine): the same command resumes both from the chief's checkpoint and
    they still end with identical weights."""
    small_csv(tmp_path)
    args = ["--train", "small.csv", "--output", "models/tagger", *TINY, "--patience", "5"]
    workers = start_workers(tmp_path, args, "first")
    models = tmp_path / "models"
    states = [models / ".tagger.partial", models / ".tagger.partial-worker-1"]
    deadline = time.monotonic() + TIMEOUT
    try:
        while time.monotonic() < deadline:
            if all((s / "state.json").is_file() for s in states):
                break
            if any(p.poll() is not None for p, _ in workers):
                break
            time.sleep(0.1)
    finally:
        for process, _ in workers:
            process.kill()
            process.wait()
    epochs = [json.loads((s / "state.json").read_text())["epoch"] for s in states]
    assert epochs == [1, 1], epochs  # killed during epoch 2 (of 2)
    shutil.rmtree(states[1])

    outputs = wait_for(start_workers(tmp_path, args, "second"))
    chief, worker = outputs
    assert f"Resuming from the checkpoint of epoch {epochs[0]}" in chief
    assert f"Resuming after epoch {epochs[0]}, in step with the chief" in worker
    first, second = digests(outputs)
    assert first == second
    history = (models / "tagger" / "history.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in history[1:]] == ["1", "2"]
    assert sorted(p.name for p in models.iterdir()) == ["tagger"]


def test_tf_config_is_read_and_checked(monkeypatch):
    from slotkeras.config import ConfigError
    from slotkeras.distributed import cluster_spec_from_env

    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert cluster_spec_from_env() == {}
    cluster = {"worker": ["a:1", "b:2"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"index": 1}}))
    assert cluster_spec_from_env() == cluster
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ConfigError, match="TF_CONFIG: not valid JSON"):
        cluster_spec_from_env()
    monkeypatch.setenv("TF_CONFIG", '["a list"]')
    with pytest.raises(ConfigError, match="TF_CONFIG: expected"):
        cluster_spec_from_env()


MIRRORED_SCRIPT = """
import json, sys
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from slotkeras import callbacks, distributed, training
from slotkeras.config import TrainConfig

# Two replicas on two logical CPUs stand in for the GPUs of a machine (without GPUs,
# MirroredStrategy() would take the first CPU only).
distributed.make_strategy = lambda name: tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
config = TrainConfig(**json.loads(sys.argv[1]))
on_epoch_end = callbacks.EpochCheckpoint.on_epoch_end


def interrupt_after_the_first_epoch(self, epoch, logs=None):
    on_epoch_end(self, epoch, logs)
    if epoch == 0:
        raise KeyboardInterrupt


if sys.argv[2] == "interrupt":  # after its first epoch's checkpoint, as Ctrl-C would
    callbacks.EpochCheckpoint.on_epoch_end = interrupt_after_the_first_epoch
    try:
        training.train(config)
    except KeyboardInterrupt:
        print("interrupted")
        sys.exit(0)
metrics = training.train(config)
print(json.dumps({"epochs": metrics["epochs_trained"], "f1": metrics["validation"]["slot_f1"]}))
"""
MIRRORED = dict(
    train="small.csv", epochs=2, batch_size=4, units=8, layers=1, embedding_dim=8,
    hash_dim=8, hash_buckets=512, verbose=0, strategy="mirrored",
)  # fmt: skip


def run_mirrored(folder: Path, config: dict, mode: str) -> tuple[str, dict | None]:
    """One process of `MIRRORED_SCRIPT`: its output and, when it finished, its summary."""
    small_csv(folder)
    result = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT, json.dumps(config), mode],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "MirroredStrategy, 2 replica(s)" in result.stdout
    if mode == "interrupt":
        return result.stdout, None
    return result.stdout, json.loads(result.stdout.strip().splitlines()[-1])


# Slow: over half a minute; .ci/run runs it after the default suite.
@pytest.mark.slow
def test_mirrored_strategy_with_two_replicas_trains_and_resumes(tmp_path):
    """The single-machine path (`--strategy mirrored` on a 2-GPU machine), with two
    logical CPU devices: variable-length buckets split across two replicas, and a run
    interrupted after its first epoch resumes there."""
    config = {**MIRRORED, "output": "models/mirrored", "output_layer": "softmax"}
    stdout, _ = run_mirrored(tmp_path, config, "interrupt")
    assert stdout.endswith("interrupted\n")
    stdout, summary = run_mirrored(tmp_path, config, "again")  # a new process, as a user
    assert "Resuming from the checkpoint of epoch 1" in stdout
    assert summary["epochs"] == 2
    history = (tmp_path / "models" / "mirrored" / "history.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in history[1:]] == ["1", "2"]
    assert (tmp_path / "models" / "mirrored" / "saved_model" / "saved_model.pb").is_file()


@pytest.mark.slow  # over half a minute on 2 cores: .ci/run runs it after the default suite
def test_the_default_crf_model_trains_under_a_mirrored_strategy(tmp_path):
    """The default model (CRF output, intent feedback) with its loss summed over two
    replicas: it learns, and its model folder serves."""
    import tensorflow as tf

    _, summary = run_mirrored(tmp_path, {**MIRRORED, "output": "models/crf"}, "once")
    folder = tmp_path / "models" / "crf"
    saved = json.loads((folder / "config.json").read_text())
    assert (saved["output_layer"], saved["slot_intent_feedback"]) == ("crf", True)
    with open(folder / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    losses = [float(row["loss"]) for row in rows]
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses)
    assert losses[1] < losses[0]  # the CRF's summed loss, over both replicas, falls
    assert all(0 <= float(row["val_slot_f1"]) <= 100 for row in rows)  # Viterbi ran
    assert summary["epochs"] == 2
    serve = tf.saved_model.load(str(folder / "saved_model")).signatures["serve"]
    out = serve(tf.constant(["leave taipei on november 2nd"]))
    assert out["tags"].shape == (1, 5)
