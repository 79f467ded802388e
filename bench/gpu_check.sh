#!/usr/bin/env bash
# What slotkeras does on a GPU. Run from the repository root on a machine with an
# NVIDIA GPU:
#
#   bench/gpu_check.sh                # the check; writes the GPU section of docs/benchmarks.md
#   bench/gpu_check.sh --cpu-dry-run  # the same steps on CPU, tiny (a slice of ATIS, one
#                                     # epoch): tests this script; writes its section into
#                                     # $OUT/benchmarks.md, never into docs/
#
# Steps: the virtualenv ($VENV, made with the dev extra if absent; CUDA's pip wheels
# added when TensorFlow sees no GPU); the GPU's name; the tests that depend on a GPU
# (tests/test_fused_lstm.py also with the GPU hidden, the only way its fused path runs);
# cuDNN: a profiled training step of the bidirectional lstm and gru taggers must run
# CudnnRNNV3; one timed epoch of every --model kind, one- and bidirectional, next to the
# plain Keras reference (bench/speed.py's timing); train.py's default on ATIS to its
# early stop, which exports the SavedModel; serving it with tf.saved_model.load (one
# utterance, batches of 256) and with saved_model_cli run; the figures, with the GPU's
# name, between the gpu markers of docs/benchmarks.md.
#
# Environment: DATA (default ../shared/data/atis), OUT (work folder, default
# /tmp/slotkeras-gpu-check, emptied first), VENV (default .venv), EPOCHS (timed epochs
# per kind, median; default 3), TESTS (gpu: the GPU-dependent test files, the default;
# all: the whole suite; none).
set -euo pipefail

DRY_RUN=0
case "${1:-}" in
  --cpu-dry-run) DRY_RUN=1 ;;
  "") ;;
  *) echo "usage: bench/gpu_check.sh [--cpu-dry-run]" >&2; exit 2 ;;
esac
if [[ ! -f train.py || ! -d slotkeras ]]; then
  echo "error: run from the repository root (bench/gpu_check.sh)" >&2
  exit 2
fi

DATA=${DATA:-../shared/data/atis}
OUT=${OUT:-/tmp/slotkeras-gpu-check}
VENV=${VENV:-.venv}
EPOCHS=${EPOCHS:-3}
TESTS=${TESTS:-gpu}
DOC=docs/benchmarks.md
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
TRAIN_FLAGS=()
if [[ $DRY_RUN == 1 ]]; then
  export CUDA_VISIBLE_DEVICES=""  # CPU, even where a GPU is present
  EPOCHS=1
  TRAIN_FLAGS=(--epochs 1)
fi

rm -rf "$OUT"
mkdir -p "$OUT"
if [[ $DRY_RUN == 1 ]]; then
  cp "$DOC" "$OUT/benchmarks.md"
  DOC=$OUT/benchmarks.md
fi
export GPU_CHECK_OUT=$OUT GPU_CHECK_DATA=$DATA GPU_CHECK_DRY_RUN=$DRY_RUN
export GPU_CHECK_EPOCHS=$EPOCHS GPU_CHECK_DOC=$DOC

step() { echo; echo "=== $*"; }

step "virtualenv $VENV"
if [[ ! -x $VENV/bin/python ]]; then
  python3.11 -m venv "$VENV"
  "$VENV/bin/pip" install -q -e ".[dev]"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
gpus() { python -c 'import tensorflow as tf; print(len(tf.config.list_physical_devices("GPU")))'; }
if [[ $DRY_RUN == 0 && $(gpus) == 0 ]]; then
  # TensorFlow's Linux wheel finds CUDA and cuDNN in these pip packages.
  version=$(python -c 'import tensorflow as tf; print(tf.__version__)')
  pip install -q "tensorflow[and-cuda]==$version"
  if [[ $(gpus) == 0 ]]; then
    echo "error: TensorFlow $version sees no GPU (nvidia-smi: $(nvidia-smi -L 2>&1 | head -1))" >&2
    exit 1
  fi
fi

step "GPU"
if [[ $DRY_RUN == 1 ]]; then
  GPU_NAME="none (CPU dry run)"
else
  GPU_NAME=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
  GPU_NAME="$GPU_NAME, driver $(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -1)"
fi
export GPU_CHECK_GPU=$GPU_NAME
echo "$GPU_NAME"

step "tests ($TESTS)"
case "$TESTS" in
  all) python -m pytest -q -p no:cacheprovider ;;
  gpu)
    python -m pytest -q -p no:cacheprovider tests/test_fused_lstm.py tests/test_layers.py
    # FusedLSTM fuses only where no GPU is visible: its path tests need it hidden.
    CUDA_VISIBLE_DEVICES="" python -m pytest -q -p no:cacheprovider tests/test_fused_lstm.py
    ;;
  none) ;;
  *) echo "error: TESTS must be gpu, all or none, not $TESTS" >&2; exit 2 ;;
esac

step "cuDNN kernels in a training step of the lstm and gru taggers"
python - <<'PY'
"""Profiles two training steps of each tagger and lists the ops and kernels that ran.
Keras' LSTM and GRU run cuDNN through the `CudnnRNNV3` op; the profile holds the ops
that executed, not the graph's (which would also hold branches never taken)."""

import dataclasses
import json
import os
import sys
import tempfile
from pathlib import Path

import keras
import tensorflow as tf
from tensorflow.tsl.profiler.protobuf import xplane_pb2

sys.path.insert(0, "bench")
import speed  # noqa: E402

from slotkeras.config import TrainConfig  # noqa: E402
from slotkeras.training import build_compiled_tagger  # noqa: E402

out, dry_run = Path(os.environ["GPU_CHECK_OUT"]), os.environ["GPU_CHECK_DRY_RUN"] == "1"
splits = speed.load_atis(os.environ["GPU_CHECK_DATA"])
config = TrainConfig()
data = speed.featurized_train({**splits, "train": splits["train"][:512]}, config)
dataset = data["dataset"](config.batch_size)
result = {}
for kind in ("lstm", "gru"):
    keras.utils.set_random_seed(1)
    run = dataclasses.replace(config, model=kind, bidirectional=True)
    tagger = build_compiled_tagger(
        run, len(data["tags"]), data["featurizer"].vocabulary_size, len(data["intents"])
    )
    tagger.fit(dataset.take(1), epochs=1, verbose=0)  # traces the train step
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        tagger.fit(dataset.take(2), epochs=1, verbose=0)
        tf.profiler.experimental.stop()
        names = {}
        for path in Path(logdir).rglob("*.xplane.pb"):
            space = xplane_pb2.XSpace()
            space.ParseFromString(path.read_bytes())
            for plane in space.planes:
                names.setdefault(plane.name, set()).update(
                    m.name for m in plane.event_metadata.values()
                )
    everything = set().union(*names.values()) if names else set()
    gpu_kernels = sum(len(v) for k, v in names.items() if "GPU" in k)
    # Host events are named "op name:op type".
    cudnn = sorted({n.rsplit(":", 1)[-1] for n in everything if "CudnnRNN" in n})
    result[kind] = {"cudnn_ops": cudnn, "gpu_kernels": gpu_kernels, "events": len(everything)}
    print(
        f"{kind}: {len(everything)} op and kernel names profiled, {gpu_kernels} on a GPU; "
        f"CudnnRNN ops: {cudnn or 'none'}"
    )
    if not everything:
        sys.exit("error: the profile is empty; nothing can be said about cuDNN")
    if not dry_run and not cudnn:
        sys.exit(f"error: the {kind} tagger's training step ran no CudnnRNN op on the GPU")
(out / "cudnn.json").write_text(json.dumps(result))
PY

step "one epoch of every kind (median of $EPOCHS after a warm-up)"
python - <<'PY'
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, "bench")
import speed  # noqa: E402

out = Path(os.environ["GPU_CHECK_OUT"])
splits = speed.load_atis(os.environ["GPU_CHECK_DATA"])
if os.environ["GPU_CHECK_DRY_RUN"] == "1":
    splits = {**splits, "train": splits["train"][:256]}
rows = speed.epoch_benchmarks(splits, speed.KINDS, int(os.environ["GPU_CHECK_EPOCHS"]))
for row in rows:
    print(f"{row['name']:45s} {row['seconds']:7.2f} s  {row['utterances_per_s']:8.0f} utt/s")
(out / "epochs.json").write_text(json.dumps({"rows": rows, "utterances": len(splits["train"])}))
PY

step "train.py's default on $DATA"
started=$(date +%s.%N)
python train.py --train "$DATA" --output "$OUT/default" --verbose 0 "${TRAIN_FLAGS[@]}" \
  | tee "$OUT/train.log"
python -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" \
  "$started" "$(date +%s.%N)" > "$OUT/train_seconds"

step "serving $OUT/default/saved_model"
python - <<'PY'
"""Serves the exported model as a user would: tf.saved_model.load, then saved_model_cli."""

import json
import os
import re
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from slotkeras.data import read_utterances

out = Path(os.environ["GPU_CHECK_OUT"])
saved_model = out / "default" / "saved_model"
serve = tf.saved_model.load(str(saved_model)).signatures["serve"]
example = "leave taipei on november 2nd"
tags = [t.decode() for t in serve(tf.constant([example]))["tags"].numpy()[0]]
print(example, "->", tags)
texts = [" ".join(u.tokens) for u in read_utterances(Path(os.environ["GPU_CHECK_DATA"]) / "test")]
for text in texts[:20]:  # warm-up
    serve(tf.constant([text]))
latencies = []
for text in texts[:300]:
    start = time.perf_counter()
    serve(tf.constant([text]))["tags"].numpy()
    latencies.append(time.perf_counter() - start)
batches = [texts[i : i + 256] for i in range(0, len(texts) - 255, 256)]
serve(tf.constant(batches[0]))
rates = []
for _ in range(3):
    start = time.perf_counter()
    for batch in batches:
        serve(tf.constant(batch))["tags"].numpy()
    rates.append(256 * len(batches) / (time.perf_counter() - start))

# saved_model_cli, with the signature's own input name.
(name,) = serve.structured_input_signature[1]
cli = subprocess.run(
    ["saved_model_cli", "run", "--dir", str(saved_model), "--tag_set", "serve",
     "--signature_def", "serve", "--input_exprs", f"{name}={[example]!r}"],
    capture_output=True, text=True, check=True,
)  # fmt: skip
print(cli.stdout[-2000:])
# It prints each output as a NumPy array of bytes: [[b'O' b'B-fromloc.city_name' ...]].
printed = re.search(r"output key tags:\s*(\[\[.*?\]\])", cli.stdout, re.S)
cli_tags = printed is not None and re.findall(r"b'([^']*)'", printed.group(1)) == tags
if not cli_tags:
    raise SystemExit("error: saved_model_cli run did not print the tags that the loaded model gave")
result = {
    "example": example,
    "tags": tags,
    "p50_ms": 1000 * float(np.percentile(latencies, 50)),
    "p99_ms": 1000 * float(np.percentile(latencies, 99)),
    "throughput": statistics.median(rates),
    "saved_model_cli": cli_tags,
}
(out / "serving.json").write_text(json.dumps(result))
PY

step "figures into $DOC"
python - <<'PY'
import datetime
import json
import os
import re
import sys
from pathlib import Path

import tensorflow as tf

sys.path.insert(0, "bench")
import accuracy  # noqa: E402

out = Path(os.environ["GPU_CHECK_OUT"])
accuracy.DOC = Path(os.environ["GPU_CHECK_DOC"])
cudnn = json.loads((out / "cudnn.json").read_text())
epochs = json.loads((out / "epochs.json").read_text())
serving = json.loads((out / "serving.json").read_text())
log = (out / "train.log").read_text()
metrics = json.loads((out / "default" / "metrics.json").read_text())
wall = float((out / "train_seconds").read_text())
held_out = re.search(r"^slot F1 ([\d.]+)", log, re.M)
intent = re.search(r"^intent accuracy ([\d.]+)", log, re.M)
build = tf.sysconfig.get_build_info()
dry_run = os.environ["GPU_CHECK_DRY_RUN"] == "1"

lines = [
    "## On a GPU (bench/gpu_check.sh)",
    "",
    f"{os.environ['GPU_CHECK_GPU']}; TensorFlow {tf.__version__} (CUDA "
    f"{build.get('cuda_version', '?')}, cuDNN {build.get('cudnn_version', '?')}); "
    f"{datetime.date.today().isoformat()}."
    + (" A CPU dry run of the script: these are not GPU figures." if dry_run else ""),
    "",
    "cuDNN in a profiled training step of the bidirectional taggers: "
    + "; ".join(
        f"{kind}: {', '.join(r['cudnn_ops']) or 'no CudnnRNN op'} "
        f"({r['gpu_kernels']} kernel names on the GPU)"
        for kind, r in cudnn.items()
    )
    + ".",
    "",
    f"One epoch ({epochs['utterances']:,} utterances of the ATIS train split, median of "
    f"{os.environ['GPU_CHECK_EPOCHS']} after a warm-up, batches by length):",
    "",
    "| model | epoch (s) | utterances/s | parameters |",
    "|---|---|---|---|",
]
for row in epochs["rows"]:
    lines.append(
        f"| {row['name']} | {row['seconds']:.2f} | {row['utterances_per_s']:,.0f} "
        f"| {row['parameters']:,} |"
    )
lines += [
    "",
    f"`python train.py --train {os.environ['GPU_CHECK_DATA']}` (the default): "
    f"{metrics['epochs_trained']} epoch(s) (best {metrics['best_epoch']}) in {wall:.0f} s "
    f"wall time; validation slot F1 {metrics['validation']['slot_f1']:.2f}"
    + (f", test slot F1 {held_out.group(1)}" if held_out else "")
    + (f", test intent accuracy {intent.group(1)}" if intent else "")
    + ".",
    "",
    f"Its SavedModel served on this machine: one utterance p50 {serving['p50_ms']:.2f} ms "
    f"(p99 {serving['p99_ms']:.2f} ms), batches of 256 {serving['throughput']:,.0f} "
    f'utterances/s; `saved_model_cli run` gave the same tags for "{serving["example"]}" '
    f"({' '.join(serving['tags'])}).",
]
accuracy.publish("<!-- gpu:begin -->", "<!-- gpu:end -->", lines)
PY
echo
echo "done: $DOC"
