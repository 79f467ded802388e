"""Faults on users' machines (issue 36): two runs on one model folder, full and
read-only disks, damaged or tampered model folders, seed 0, one huge utterance, and the
command line's own help.

Disk errors are injected in-process (a wrapped `os.open`, `keras.Model.save`, ...); a
slow test fills a real small tmpfs where one can be mounted. One tiny model is trained
once for the module (`model`), in a subprocess, as a user trains it.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, explain, run, write

TRAIN_PY = ROOT / "train.py"
EVALUATE_PY = ROOT / "evaluate.py"
TINY = [
    "--units", "8", "--layers", "1", "--embedding-dim", "8", "--hash-dim", "8",
    "--hash-buckets", "512", "--pair-buckets", "512", "--batch-size", "32", "--verbose", "0",
    # The machinery under test, not small-data training: one pass an epoch, no refit.
    "--epoch-utterances", "1", "--no-refit",
]  # fmt: skip


def bundled_rows(first: int, last: int) -> str:
    lines = (ROOT / "data" / "train.csv").read_text(encoding="utf-8").splitlines()
    return "\n".join([lines[0], *lines[1 + first : 1 + last]]) + "\n"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    write(folder / "train.csv", bundled_rows(0, 48))
    write(folder / "valid.csv", bundled_rows(48, 64))
    return folder


def train_args(corpus: Path, output, *extra) -> list:
    return [
        "--train", corpus / "train.csv", "--valid", corpus / "valid.csv", "--output", output,
        "--epochs", "2", *TINY, *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def model(corpus, tmp_path_factory) -> Path:
    """A tiny model folder, as `train.py` writes it (with its manifest)."""
    output = tmp_path_factory.mktemp("model") / "models" / "tiny"
    result = run([TRAIN_PY, *train_args(corpus, output, "--seed", "7")])
    assert result.returncode == 0, explain(result)
    return output


def copy_of(model: Path, tmp_path: Path, manifest: bool = True) -> Path:
    folder = Path(shutil.copytree(model, tmp_path / "copy"))
    if not manifest:
        (folder / "manifest.json").unlink()
    return folder


def one_error_line(result, status: int = 2) -> str:
    report = explain(result)
    assert result.returncode == status, report
    assert "Traceback" not in result.stdout + result.stderr, report
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), report
    return lines[0]


def run_in_process(capsys, command, argv) -> tuple[int, str, str]:
    """`command` (a `slotkeras.cli` main) run as the command line runs it."""
    from slotkeras import cli

    status = cli.run_cli(command, [str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


# --------------------------------------------------------------------------------------
# One writer per model folder
# --------------------------------------------------------------------------------------

HOLD_THE_LOCK = """
import sys
from slotkeras.folder_lock import hold

with hold(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.read()  # until the test closes it, or kills this process
"""


def start_holder(output: Path) -> subprocess.Popen:
    """Another process that holds `output`'s lock, through the lock's own API."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_LOCK, str(output)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert holder.stdout.readline() == b"held\n"
    return holder


def tree(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_a_second_run_on_a_folder_being_trained_exits_2_naming_the_process(corpus, tmp_path):
    output = tmp_path / "models" / "race"
    # The first run's resumable folder: the second must leave it alone.
    partial = write(tmp_path / "models" / ".race.partial", {"run.json": "{}", "state.json": "{}"})
    holder = start_holder(output)
    try:
        before = tree(tmp_path)
        result = run([TRAIN_PY, *train_args(corpus, output)])
        line = one_error_line(result)
        assert f"{output} is being trained by process {holder.pid} (" in line, line
        assert line.endswith("; wait for it or choose another --output"), line
        assert tree(tmp_path) == before  # nothing written, the partial folder untouched
        assert not output.exists() and partial.is_dir()
    finally:
        holder.kill()  # kill -9: the kernel drops the lock with the process
        holder.wait()
    from slotkeras.folder_lock import hold, lock_path

    assert lock_path(output).exists()  # its file stays behind, but not the lock
    with hold(output):
        pass
    assert not lock_path(output).exists()


def test_the_lock_refuses_a_second_holder_and_is_free_once_the_first_ends(tmp_path):
    from slotkeras.folder_lock import FolderLockedError, hold

    output = tmp_path / "models" / "x"
    holder = start_holder(output)
    with pytest.raises(FolderLockedError, match=rf"process {holder.pid} \(.*since "):
        with hold(output):
            pass
    holder.stdin.close()  # the holder leaves its block and removes the file
    assert holder.wait(timeout=30) == 0
    with hold(output):
        with pytest.raises(FolderLockedError, match=rf"process {os.getpid()} "):
            with hold(output):  # one writer, even within one process
                pass


# --------------------------------------------------------------------------------------
# Disk errors: one line, status 2, what was there stays valid, the same command resumes
# --------------------------------------------------------------------------------------


def refuse_writes(monkeypatch, code: int, matches, after: int = 0) -> list:
    """Makes `os.open` and `os.mkdir` fail with `code` for paths `matches(path)` accepts,
    after `after` such opens succeeded (a disk that fills up, or is read-only). Returns
    the list of refused paths."""
    refused, opened = [], []
    real_open, real_mkdir = os.open, os.mkdir

    def fake_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR) and matches(Path(path)):
            opened.append(path)
            if len(opened) > after:
                refused.append(path)
                raise OSError(code, os.strerror(code), str(path))
        return real_open(path, flags, *args, **kwargs)

    def fake_mkdir(path, *args, **kwargs):
        if code == errno.EROFS and matches(Path(path)):
            refused.append(path)
            raise OSError(code, os.strerror(code), str(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", fake_open)
    monkeypatch.setattr(os, "mkdir", fake_mkdir)
    return refused


def no_temporary_files(root: Path) -> bool:
    return not [p for p in root.rglob("*.tmp")]


def test_a_full_disk_at_a_checkpoint_keeps_the_last_one_and_the_same_command_resumes(
    corpus, tmp_path, monkeypatch, capsys
):
    from slotkeras import cli

    output = tmp_path / "models" / "m"
    argv = train_args(corpus, output, "--no-export", "--seed", "7")
    # Epoch 1's checkpoint is written; epoch 2's finds the disk full.
    refused = refuse_writes(
        monkeypatch, errno.ENOSPC, lambda p: p.name.startswith(".checkpoint.npz."), after=1
    )
    status, out, err = run_in_process(capsys, cli.train_main, argv)
    checkpoint = tmp_path / "models" / ".m.partial" / "checkpoint.npz"
    assert refused and status == 2, err
    assert err == f"error: cannot write {checkpoint}: No space left on device\n"
    with np.load(checkpoint) as arrays:  # the previous checkpoint, whole
        assert json.loads(str(arrays["state"]))["epoch"] == 1
    assert not output.exists() and no_temporary_files(tmp_path)
    monkeypatch.undo()  # space again
    status, out, err = run_in_process(capsys, cli.train_main, argv)
    assert status == 0, err
    assert "Resuming from the checkpoint of epoch 1" in out
    assert (output / "manifest.json").is_file()
    assert sorted(p.name for p in output.parent.iterdir()) == ["m"]


@pytest.mark.slow  # a tiny training in this process, and its resumption
def test_a_full_disk_while_writing_the_model_keeps_the_old_model(
    corpus, model, tmp_path, monkeypatch, capsys
):
    import keras

    from slotkeras import cli

    output = Path(shutil.copytree(model, tmp_path / "models" / "m"))
    old = tree(output)
    argv = train_args(corpus, output, "--no-export", "--seed", "8")

    def full(self, filepath, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(filepath))

    monkeypatch.setattr(keras.Model, "save", full)
    status, out, err = run_in_process(capsys, cli.train_main, argv)
    written = tmp_path / "models" / ".m.partial" / "model" / "model.keras"
    assert status == 2 and err == f"error: cannot write {written}: No space left on device\n"
    assert tree(output) == old  # the model that was there, untouched
    monkeypatch.undo()
    status, out, err = run_in_process(capsys, cli.train_main, argv)
    assert status == 0, err
    assert "Resuming from the checkpoint of epoch 2" in out
    assert tree(output) != old and (output / "manifest.json").is_file()


def test_a_read_only_output_is_one_line_before_anything_is_written(
    corpus, tmp_path, monkeypatch, capsys
):
    from slotkeras import cli

    root = tmp_path / "readonly"
    refused = refuse_writes(monkeypatch, errno.EROFS, lambda p: root in p.parents or p == root)
    argv = train_args(corpus, root / "models" / "m")
    status, out, err = run_in_process(capsys, cli.train_main, argv)
    assert refused and status == 2, err
    assert re.fullmatch(rf"error: cannot write {root}/\S+: Read-only file system\n", err), err
    assert not root.exists()


def test_replacing_a_model_folder_that_fails_puts_the_old_one_back(tmp_path, monkeypatch):
    from slotkeras.file_writing import WriteError
    from slotkeras.model_folder import replace_folder

    old = write(tmp_path / "m", {"model.keras": "old"})
    new = write(tmp_path / ".m.partial" / "model", {"model.keras": "new"})
    real_replace = os.replace

    def full(source, target):
        if Path(source) == new:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_replace(source, target)

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(WriteError, match=f"cannot write {old}: No space left on device"):
        replace_folder(new, old)
    assert (old / "model.keras").read_text() == "old" and new.is_dir()


def test_atomic_write_leaves_the_old_file_when_the_disk_is_full(tmp_path, monkeypatch):
    from slotkeras.file_writing import WriteError, atomic_write

    path = write(tmp_path / "checkpoint.npz", b"the previous checkpoint")

    def full(descriptor):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(WriteError, match=f"^cannot write {path}: No space left on device$"):
        atomic_write(path, b"the next one")
    assert path.read_bytes() == b"the previous checkpoint"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.npz"]


def test_a_saved_model_export_on_a_full_disk_is_a_write_error(model, tmp_path, monkeypatch):
    import keras
    import tensorflow as tf

    from slotkeras.file_writing import WriteError
    from slotkeras.saved_model_export import export_saved_model
    from slotkeras.slot_filler import SlotFiller

    def full(self, path, **kwargs):  # TensorFlow's own error, as its file system says
        message = f"{path}/variables/variables.data-00000-of-00001; No space left on device"
        raise tf.errors.ResourceExhaustedError(None, None, message)

    # The backend's archive class (`ExportArchive(...)` makes one of those).
    monkeypatch.setattr(type(keras.export.ExportArchive()), "write_out", full)
    with pytest.raises(WriteError, match=f"^cannot write {tmp_path}/sm: No space left on device$"):
        export_saved_model(SlotFiller.load(model), tmp_path / "sm")


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_reports_and_conversions_on_a_refusing_disk_are_one_line(
    model, tmp_path, monkeypatch, capsys, code
):
    from slotkeras import cli

    data = write(tmp_path / "held_out.csv", bundled_rows(64, 80))
    refuse_writes(monkeypatch, code, lambda p: "out" in p.parts)
    reason = os.strerror(code)
    report = tmp_path / "out" / "report.json"
    argv = ["--model", model, "--data", data, "--report-json", report]
    status, out, err = run_in_process(capsys, cli.evaluate_main, argv)
    assert status == 2 and err == f"error: cannot write {report}: {reason}\n", err
    errors = tmp_path / "out" / "errors.txt"
    status, out, err = run_in_process(
        capsys, cli.evaluate_main, ["--model", model, "--data", data, "--errors", errors]
    )
    assert status == 2 and err == f"error: cannot write {errors}: {reason}\n", err
    converted = tmp_path / "out" / "converted.csv"
    status = cli.main(["convert", str(data), str(converted)])
    err = capsys.readouterr().err
    assert status == 2 and err == f"error: cannot write {converted}: {reason}\n", err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def _mount_tmpfs(folder: Path, size: str) -> str | None:
    """Mounts a tmpfs of `size` at `folder`; None, or why it cannot."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as error:
        return str(error)
    return None if result.returncode == 0 else result.stderr.strip() or "mount failed"


@pytest.mark.slow  # trains on a real full disk, then again with room
def test_a_real_full_and_read_only_tmpfs(corpus, tmp_path):
    disk = tmp_path / "disk"
    why = _mount_tmpfs(disk, "300k")
    if why is not None:
        pytest.skip(f"cannot mount a tmpfs here: {why}")
    try:
        command = [TRAIN_PY, *train_args(corpus, disk / "models" / "m", "--seed", "7")]
        line = one_error_line(run(command))
        assert re.fullmatch(rf"error: cannot write {disk}/\S+: No space left on device", line)
        assert not (disk / "models" / "m").exists()
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        line = one_error_line(run(command))
        assert re.fullmatch(rf"error: cannot write {disk}/\S+: Read-only file system", line)
        subprocess.run(["mount", "-o", "remount,rw,size=64m", str(disk)], check=True)
        result = run(command)  # room again: the same command
        assert result.returncode == 0, explain(result)
        assert (disk / "models" / "m" / "manifest.json").is_file()
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


# --------------------------------------------------------------------------------------
# Model folder integrity
# --------------------------------------------------------------------------------------


def test_the_manifest_lists_every_file_with_its_size_hash_and_the_versions(model):
    import keras
    import tensorflow as tf

    import slotkeras

    manifest = json.loads((model / "manifest.json").read_text())
    files = sorted(
        p.relative_to(model).as_posix()
        for p in model.rglob("*")
        if p.is_file() and p.name != "manifest.json"
    )
    assert [entry["path"] for entry in manifest["files"]] == files
    assert {"model.keras", "labels.json", "config.json", "saved_model/saved_model.pb"} <= set(files)
    for entry in manifest["files"]:
        payload = (model / entry["path"]).read_bytes()
        assert entry["size"] == len(payload)
        assert entry["sha256"] == hashlib.sha256(payload).hexdigest()
    assert manifest["versions"] == {
        "slotkeras": slotkeras.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }


def tamper(folder: Path, name: str, change) -> None:
    path = folder / name
    if name.endswith(".json"):
        value = json.loads(path.read_text())
        change(value)
        path.write_text(json.dumps(value))
    else:
        path.write_bytes(change(path.read_bytes()))


def renamed_tags(labels):
    labels["tags"] = [tag.replace("city", "town") for tag in labels["tags"]]
    assert any("town" in tag for tag in labels["tags"])


TAMPERED = {
    "random-keras": ("model.keras", lambda b: os.urandom(len(b))),
    "renamed-tags": ("labels.json", renamed_tags),
    "negative-units": ("config.json", lambda c: c.update(units=-5)),
    "bogus-kind": ("config.json", lambda c: c.update(model="bogus")),
}
# What each says of a folder written before the manifest (the file and the reason).
WITHOUT_MANIFEST = {
    "random-keras": ("model.keras", "damaged, not a Keras model archive"),
    "renamed-tags": ("labels.json", "not those model.keras was trained on"),
    "negative-units": ("config.json", "Received an invalid value for `units`"),
    "bogus-kind": ("config.json", "Received an invalid value for `model`"),
}


@pytest.mark.parametrize("case", list(TAMPERED))
def test_a_damaged_or_replaced_file_is_refused_in_one_line(model, tmp_path, case):
    from slotkeras.model_folder import ModelFolderError, read_model_folder

    name, change = TAMPERED[case]
    folder = copy_of(model, tmp_path)
    tamper(folder, name, change)
    with pytest.raises(ModelFolderError) as caught:
        read_model_folder(folder)
    assert str(caught.value) == f"{folder / name} does not match the manifest: damaged or replaced"
    (folder / "manifest.json").unlink()  # as a folder written before the manifest
    named, reason = WITHOUT_MANIFEST[case]
    with pytest.raises(ModelFolderError) as caught:
        read_model_folder(folder)
    assert str(caught.value).startswith(f"{folder / named}: ") and reason in str(caught.value)


def test_random_bytes_in_model_keras_are_reported_as_damage_by_predict(model, tmp_path):
    folder = copy_of(model, tmp_path)
    tamper(folder, "model.keras", lambda b: os.urandom(len(b)))
    command = ["-m", "slotkeras", "predict", "--model", folder, "leave taipei"]
    line = one_error_line(run(command))
    assert line == f"error: {folder}/model.keras does not match the manifest: damaged or replaced"
    (folder / "manifest.json").unlink()
    line = one_error_line(run(command))
    assert "damaged" in line and "File not found" not in line


def test_links_out_of_the_folder_are_refused(model, tmp_path):
    from slotkeras.model_folder import ModelFolderError, read_model_folder

    folder = copy_of(model, tmp_path, manifest=False)
    (folder / "history.csv").unlink()
    (folder / "history.csv").symlink_to("/etc/passwd")
    with pytest.raises(ModelFolderError, match="history.csv: a link to /etc/passwd, outside"):
        read_model_folder(folder)
    (folder / "history.csv").unlink()
    (folder / "history.csv").symlink_to("metrics.json")  # a link inside is a file of it
    read_model_folder(folder)


def test_a_folder_written_before_the_manifest_loads_with_a_one_line_note(model, tmp_path):
    folder = copy_of(model, tmp_path, manifest=False)
    result = run(["-m", "slotkeras", "predict", "--model", folder, "leave taipei"])
    assert result.returncode == 0, explain(result)
    assert result.stderr.strip().splitlines() == [
        f"note: {folder} has no manifest.json (written before slotkeras kept one): "
        "its files are loaded unchecked"
    ]
    assert json.loads(result.stdout.strip().splitlines()[-1])["text"] == "leave taipei"


def test_a_bad_value_in_a_config_file_names_the_file(tmp_path):
    config = write(tmp_path / "settings.json", json.dumps({"units": -5}))
    line = one_error_line(run([TRAIN_PY, "--config", config, "--output", tmp_path / "m"]))
    assert line.startswith(f"error: {config}: Received an invalid value for `units`"), line
    # A flag that replaces the file's value leaves nothing of it to refuse.
    from slotkeras import cli

    args = cli.train_parser().parse_args(["--config", str(config), "--units", "8"])
    assert cli.config_from_args(args).units == 8


# --------------------------------------------------------------------------------------
# Seed 0
# --------------------------------------------------------------------------------------


def test_seed_0_shuffles_the_epochs_and_every_other_seed_keeps_tfs_global_seed():
    from tensorflow.python.framework import random_seed

    from slotkeras.config import TrainConfig
    from slotkeras.data import Utterance
    from slotkeras.splits import Splits
    from slotkeras.training import seed_everything
    from slotkeras.training_inputs import training_inputs

    utterances = [
        Utterance(("fly", "to", city), ("O", "O", "B-toloc.city_name"), "atis_flight")
        for city in ("boston", "denver", "dallas", "austin", "miami", "tampa")
    ]
    for seed in (0, 5):
        config = TrainConfig(seed=seed, batch_size=2, epochs=2, lexicon="none")
        seed_everything(config)
        if seed:
            assert random_seed.get_seed(None)[0] == seed  # the seed as it always was
        inputs = training_inputs(config, Splits(utterances, utterances[:2], None, None))
        batches = [b[0]["word_ids"].numpy().tolist() for b in inputs.train_from(0)]
        seed_everything(config)
        again = [b[0]["word_ids"].numpy().tolist() for b in inputs.train_from(0)]
        assert batches and batches == again


@pytest.mark.slow  # two tiny trainings
def test_seed_0_trains_twice_to_the_same_weights(corpus, tmp_path):
    import keras

    import slotkeras.layers  # noqa: F401  (registers the layers model.keras holds)

    weights = []
    for name in ("first", "second"):
        output = tmp_path / name
        result = run([TRAIN_PY, *train_args(corpus, output, "--seed", "0", "--no-export")])
        assert result.returncode == 0, explain(result)
        loaded = keras.models.load_model(output / "model.keras", compile=False)
        weights.append(loaded.get_weights())
    assert len(weights[0]) == len(weights[1])
    assert all(np.array_equal(a, b) for a, b in zip(*weights, strict=True))


# --------------------------------------------------------------------------------------
# One huge utterance: chunks bounded by padded positions, the same outputs
# --------------------------------------------------------------------------------------


def test_chunks_stay_those_of_today_for_ordinary_batches_and_shrink_for_a_huge_utterance():
    import tensorflow as tf

    from slotkeras.decoding import (
        DECODED,
        SERVE_CHUNK,
        SERVE_LENGTH,
        chunk_bounds,
        decode_in_chunks,
    )

    ordinary = sorted(np.random.default_rng(0).integers(1, SERVE_LENGTH + 1, 1000).tolist())
    limit = SERVE_CHUNK * SERVE_LENGTH
    assert chunk_bounds(ordinary, SERVE_CHUNK, limit) == [
        (start, min(start + SERVE_CHUNK, 1000)) for start in range(0, 1000, SERVE_CHUNK)
    ]
    lengths = [3] * 9 + [10, 40, 200]
    tokens = tf.constant([["w"] * n + [""] * (200 - n) for n in lengths[::-1]])
    shapes = []

    def decode(chunk, marks):  # a decoder that records the chunks it is given
        shapes.append(tuple(chunk.shape))
        rows, steps = tf.shape(chunk)[0], tf.shape(chunk)[1]
        return tuple(
            tf.zeros([rows, steps], dtype) if rank == 2 else tf.zeros([rows], dtype)
            for dtype, rank in DECODED
        )

    outputs = decode_in_chunks(decode, tokens, tf.zeros(tokens.shape, tf.bool), 8, 8 * 8)
    # 8 rows of 3; then 3 and 10 (2 x 10 positions), 40 and 200 alone (2 x 40 > 64).
    assert shapes == [(8, 3), (2, 10), (1, 40), (1, 200)]
    assert chunk_bounds(lengths, 8, 64) == [(0, 8), (8, 10), (10, 11), (11, 12)]
    assert outputs[0].shape == (12, 200)


def test_a_huge_utterance_gets_the_tags_and_probabilities_of_one_padded_batch(model):
    import tensorflow as tf

    from slotkeras.data import read_utterances
    from slotkeras.saved_model_export import serving_function
    from slotkeras.slot_filler import SlotFiller

    filler = SlotFiller.load(model)
    texts = [" ".join(u.tokens) for u in read_utterances(ROOT / "data" / "test.csv")][:30]
    texts.insert(11, " ".join(" ".join(texts).split()[:300]))  # one huge utterance
    signature = [tf.TensorSpec([None], tf.string)]
    # Chunks of 4 utterances, at most 4 * 128 positions: the huge one runs alone.
    chunked = tf.function(serving_function(filler, chunk_size=4), input_signature=signature)
    whole = tf.function(serving_function(filler, chunk_size=1000), input_signature=signature)
    a, b = chunked(tf.constant(texts)), whole(tf.constant(texts))
    assert a["tags"].shape == (31, 300)
    for key in ("tokens", "tags", "starts", "ends", "intent"):
        np.testing.assert_array_equal(a[key].numpy(), b[key].numpy())
    for key in ("tag_probabilities", "intent_probability"):
        np.testing.assert_allclose(a[key].numpy(), b[key].numpy(), rtol=1e-5, atol=1e-6)
    predicted = filler.predict([t.split() for t in texts], batch_size=4)
    assert [[t.decode() for t in row if t] for row in a["tags"].numpy()] == [
        p.tags for p in predicted
    ]


# --------------------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------------------


def test_python_m_slotkeras_help_lists_the_commands_and_exits_0():
    from slotkeras.cli import COMMANDS

    result = run(["-m", "slotkeras", "--help"])
    assert result.returncode == 0, explain(result)
    for name in COMMANDS:
        assert re.search(rf"^  {name} ", result.stdout, flags=re.M), name
    assert run(["-m", "slotkeras"]).returncode == 2  # no command: a usage error


@pytest.mark.parametrize("name", ["train", "evaluate", "predict", "convert"])
def test_each_commands_help_names_the_command(name):
    result = run(["-m", "slotkeras", name, "--help"])
    assert result.returncode == 0, explain(result)
    assert result.stdout.startswith(f"usage: slotkeras {name} "), result.stdout[:80]


def test_evaluate_labels_the_calibration_error_as_a_percentage(model, capsys):
    from slotkeras import cli

    data = write(model.parent / "held_out.csv", bundled_rows(64, 80))
    status, out, err = run_in_process(capsys, cli.evaluate_main, ["--model", model, "--data", data])
    assert status == 0, err
    assert re.search(r"^span confidence calibration error \(ECE\) \d+\.\d\d%$", out, re.M), out


def test_killing_the_holder_with_sigkill_frees_the_folder_for_a_new_run(tmp_path):
    from slotkeras.folder_lock import hold

    output = tmp_path / "models" / "m"
    holder = start_holder(output)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    with hold(output):
        assert json.loads((output.parent / ".m.lock").read_text())["pid"] == os.getpid()
