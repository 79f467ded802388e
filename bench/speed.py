"""Speed benchmark on ATIS: training epochs per kind, the plain reference, serving.

    python bench/speed.py                 # everything (about 12 min on 2 cores)
    python bench/speed.py --quick         # 2 timed epochs, no full trainings

Reports, with the machine's CPU and the TensorFlow version:
- epoch time and utterances/s of every kind and direction at the default size, built
  by `slotkeras.models.build_tagger` and fed by `slotkeras.datasets.make_dataset`
  (batches by length), next to the plain reference timed in the same process: the
  same-size bidirectional LSTM built the usual way (Embedding -> Bidirectional(LSTM)
  -> Dense softmax, sequences padded to the longest utterance, batch 32,
  `model.fit` on NumPy arrays);
- wall time of `train.py` on ATIS to its early stop and its peak resident memory
  (median of `--full-runs` runs);
- the exported SavedModel fed raw strings: p50/p99 latency of one utterance and
  throughput with batches of 256.
With `--training-against FLAGS`, only `train.py` to its early stop, the default against
the default with FLAGS (an earlier default), seed by seed in turns (`--repeats K`: K
rounds of those, each seed's time the least of its rounds), and an epoch of each timed
in rounds in one process (wall times of whole runs move with the machine).
Epoch times are medians of `--epochs` timed epochs after one warm-up epoch, taken in
rounds over all models. Results go
to docs/benchmarks.md between the speed markers.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
BEGIN, END = "<!-- speed:begin -->", "<!-- speed:end -->"
KINDS = ["feedforward", "elman", "jordan", "gru", "lstm", "peephole_lstm"]


def load_atis(data):
    from slotkeras.data import read_splits

    return read_splits(data)


def epoch_timer():
    """A callback holding the wall time from the start to the end of the epoch, as
    Keras reports them: what a training run pays per epoch. (A `fit` call can also
    spend a few seconds after its last epoch tearing down the input pipeline; a run
    pays that once, not per epoch.)"""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds = time.perf_counter() - self.start

    return EpochTimer()


def timed_rounds(runs: dict, epochs: int) -> dict:
    """Median epoch time of each model, timed in rounds: one warm-up epoch each
    (tracing), then `epochs` rounds that time one epoch of every model in turn, so
    that a slow spell of the machine costs each model one epoch, not one model all."""
    for model, fit_args in runs.values():
        model.fit(**fit_args, epochs=1, verbose=0)
    times = {name: [] for name in runs}
    for _ in range(epochs):
        for name, (model, fit_args) in runs.items():
            # As timeit does: collect before, no collection inside the timed epoch.
            gc.collect()
            gc.disable()
            timer = epoch_timer()
            try:
                model.fit(**fit_args, epochs=1, verbose=0, callbacks=[timer])
            finally:
                gc.enable()
            times[name].append(timer.seconds)
    return {name: statistics.median(values) for name, values in times.items()}


def featurized_train(splits, config):
    """The ATIS train split featurized as `train.py` does for `config`: a dict with the
    featurizer, tag and intent vocabularies, per-utterance ids, and `dataset(batch_size)`
    making the bucketed, shuffled training dataset."""
    from slotkeras.datasets import featurize, make_dataset
    from slotkeras.layers.token_featurizer import TokenFeaturizer
    from slotkeras.vocabularies import LabelVocabulary, build_vocabulary

    train = splits["train"]
    vocab = build_vocabulary((u.tokens for u in train), lowercase=config.lowercase)
    featurizer = TokenFeaturizer(
        vocab, num_buckets=config.hash_buckets, max_trigrams=config.max_trigrams
    )
    tags = LabelVocabulary.from_tags(u.tags for u in train)
    intents = LabelVocabulary.from_labels(u.intent for u in train)
    word_ids, trigram_ids = featurize(featurizer, [u.tokens for u in train])
    slot_ids = [tags.encode(u.tags) for u in train]
    intent_ids = intents.encode([u.intent for u in train])

    def dataset(batch_size):
        return make_dataset(
            word_ids,
            trigram_ids,
            slot_ids,
            intent_ids,
            batch_size=batch_size,
            shuffle=True,
            seed=1,
            max_trigrams=config.max_trigrams,
        )

    return {
        "featurizer": featurizer,
        "tags": tags,
        "intents": intents,
        "word_ids": word_ids,
        "slot_ids": slot_ids,
        "size": len(train),
        "dataset": dataset,
    }


REFERENCE_NAME = "reference: plain BiLSTM, padded, batch 32"


def reference_run(data, config):
    """The plain reference of issue 6 and its `fit` arguments: Embedding -> Bidirectional
    LSTM -> Dense softmax of the default's sizes, every utterance padded to the longest,
    batch 32, NumPy arrays."""
    import keras
    import numpy as np

    width = max(len(w) for w in data["word_ids"])
    x = np.zeros((data["size"], width), np.int32)
    y = np.zeros((data["size"], width), np.int32)
    for i, (w, s) in enumerate(zip(data["word_ids"], data["slot_ids"])):
        x[i, : len(w)] = w
        y[i, : len(s)] = s
    keras.utils.set_random_seed(1)
    inputs = keras.Input((None,), dtype="int32")
    h = keras.layers.Embedding(
        data["featurizer"].vocabulary_size, config.embedding_dim, mask_zero=True
    )(inputs)
    for _ in range(config.layers):
        h = keras.layers.Bidirectional(keras.layers.LSTM(config.units, return_sequences=True))(h)
    reference = keras.Model(inputs, keras.layers.Dense(len(data["tags"]), activation="softmax")(h))
    reference.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return reference, {"x": x, "y": y, "batch_size": 32}


def epoch_benchmarks(splits, kinds, epochs):
    import dataclasses

    import keras

    from slotkeras.compiled_tagger import build_compiled_tagger
    from slotkeras.config import TrainConfig

    config = TrainConfig()
    data = featurized_train(splits, config)
    train = splits["train"]
    dataset = data["dataset"](config.batch_size)
    tags, intents, featurizer = data["tags"], data["intents"], data["featurizer"]
    rows = []
    runs = {}

    def ours(kind, bidirectional):
        keras.utils.set_random_seed(1)
        run = dataclasses.replace(config, model=kind, bidirectional=bidirectional)
        tagger = build_compiled_tagger(run, len(tags), featurizer.vocabulary_size, len(intents))
        return tagger, {"x": dataset, "shuffle": False}

    reference_name = REFERENCE_NAME
    runs[reference_name] = reference_run(data, config)
    default_name = f"default ({config.model}, bi, {config.encoding}, {config.output_layer})"
    runs[default_name] = ours(config.model, config.bidirectional)
    kinds_of = {}
    for kind in kinds:
        for bidirectional in (False, True):
            if kind == "feedforward" and bidirectional:
                continue
            name = f"{kind} {'bi' if bidirectional else 'uni'}"
            runs[name] = ours(kind, bidirectional)
            kinds_of[name] = (kind, bidirectional)
    seconds = timed_rounds(runs, epochs)
    ref_time = seconds[reference_name]
    lstm_time = None
    for name, (model, _) in runs.items():
        row = {"name": name, "seconds": seconds[name], "parameters": model.count_params()}
        if name == default_name:
            row["default"] = True
        if name in kinds_of:
            row["kind"], row["bidirectional"] = kinds_of[name]
            if kinds_of[name] == ("lstm", False):
                lstm_time = seconds[name]
        rows.append(row)
    for row in rows:
        row["utterances_per_s"] = len(train) / row["seconds"]
        row["vs_reference"] = ref_time / row["seconds"]
        if lstm_time and row.get("kind") in ("jordan", "peephole_lstm", "gru", "elman", "lstm"):
            same_dir = [
                r
                for r in rows
                if r.get("kind") == "lstm" and r.get("bidirectional") == row.get("bidirectional")
            ]
            if same_dir:
                row["vs_builtin_lstm"] = row["seconds"] / same_dir[0]["seconds"]
    return rows


# Runs train.py and then writes the peak resident memory of that process (VmHWM: the
# high-water mark of its own address space, unlike ru_maxrss, which after fork and
# exec still counts the pages of the parent, here a process holding many models).
TRAIN_AND_REPORT_PEAK = """
import re, runpy, sys
sys.argv = ["train.py", *sys.argv[1:]]
try:
    runpy.run_path("train.py", run_name="__main__")
finally:
    status = open("/proc/self/status").read()
    open(sys.argv_peak, "w").write(re.search(r"VmHWM:\\s*(\\d+) kB", status).group(1))
"""


def full_trainings(data, runs, extra=(), seeds=None):
    """`runs` runs of `train.py --train DATA EXTRA` to their early stop (seeds 1.., or
    `seeds`): wall time, epochs and validation F1 of each, and the peak memory."""
    out = []
    peaks = []
    for seed in seeds or range(1, runs + 1):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    "-c",
                    TRAIN_AND_REPORT_PEAK.replace("sys.argv_peak", repr(f"{tmp}/peak")),
                    "--train",
                    data,
                    "--output",
                    f"{tmp}/m",
                    "--seed",
                    str(seed),
                    "--verbose",
                    "0",
                    "--no-export",
                    *extra,
                ],
                cwd=ROOT,
                check=True,
                capture_output=True,
            )
            wall = time.perf_counter() - start
            metrics = json.loads(Path(f"{tmp}/m/metrics.json").read_text())
            peaks.append(int(Path(f"{tmp}/peak").read_text()) / 1024)
        out.append(
            {
                "wall_seconds": wall,
                "epochs": metrics["epochs_trained"],
                "valid_slot_f1": metrics["validation"]["slot_f1"],
            }
        )
    return out, max(peaks)


def training_side_by_side(data, runs, baseline_flags, repeats=1):
    """Training to the early stop of today's default against the default with
    `baseline_flags` (an earlier default), run in turns (seed 1 of each, then seed 2...)
    so that a slow spell of the machine costs both alike; with `repeats` > 1, the whole
    round again, `repeats` times. Returns both runs' rows, each seed's repeats in a list."""
    ours = [[] for _ in range(runs)]
    baseline = [[] for _ in range(runs)]
    for _ in range(repeats):
        for seed in range(1, runs + 1):
            ours[seed - 1] += full_trainings(data, 1, seeds=[seed])[0]
            baseline[seed - 1] += full_trainings(data, 1, extra=baseline_flags, seeds=[seed])[0]
    return ours, baseline


def epoch_costs(data, baseline_flags, epochs):
    """Seconds per training epoch of the default and of the default with
    `baseline_flags`, each as `train.py` builds it (features, word dropout, tagger,
    optimizer), timed in rounds in one process (`timed_rounds`): the cost of an epoch
    without the machine's slow spells between whole runs, which move a run's wall time
    by a third here. Validation and the checkpoint, run after each epoch, are left out."""
    import keras
    import tensorflow as tf

    from slotkeras.cli import config_from_args, train_parser
    from slotkeras.compiled_tagger import compiled_tagger_for
    from slotkeras.splits import load_splits
    from slotkeras.training_inputs import training_inputs

    runs = {}
    for name, flags in (("default", []), ("earlier", baseline_flags)):
        config = config_from_args(train_parser().parse_args(["--train", data, *flags]))
        inputs = training_inputs(config, load_splits(config))
        keras.utils.set_random_seed(config.seed)
        tagger = compiled_tagger_for(config, inputs, tf.distribute.get_strategy())
        fit_args = {"x": inputs.train_from(0), "steps_per_epoch": inputs.steps_per_epoch}
        runs[name] = (tagger, {**fit_args, "shuffle": False})
    return timed_rounds(runs, epochs)


def side_by_side_lines(command, ours, baseline, baseline_flags, costs) -> list[str]:
    """`ours` and `baseline`: per seed, the rows of its repeats. A seed's runs train the
    same epochs, so their times differ only by what slowed a run down; with repeats
    each seed's time is the least of its runs, as `timeit` takes the least."""

    def walls(rows):
        return [min(r["wall_seconds"] for r in repeats) for repeats in rows]

    def median_ratio(our_walls, baseline_walls):
        return statistics.median(o / b for o, b in zip(our_walls, baseline_walls, strict=True))

    repeated = len(ours[0]) > 1

    def summary(rows):
        if not repeated:
            runs = "runs " + ", ".join(f"{repeats[0]['wall_seconds']:.0f}" for repeats in rows)
        else:
            runs = "; ".join(
                f"seed {seed} " + ", ".join(f"{r['wall_seconds']:.0f}" for r in repeats)
                for seed, repeats in enumerate(rows, 1)
            )
        return (
            f"median {statistics.median(walls(rows)):.0f} s ({runs} s; "
            f"epochs {', '.join(str(repeats[0]['epochs']) for repeats in rows)})"
        )

    ratio = median_ratio(walls(ours), walls(baseline))
    # The epochs each seed ran (fixed by the seed) at the epoch costs timed in rounds.
    cost = costs["default"] / costs["earlier"]
    by_epochs = [o[0]["epochs"] / b[0]["epochs"] for o, b in zip(ours, baseline, strict=True)]
    lines = [
        "## Training time of the default against an earlier default (ATIS, to the early stop)",
        "",
        f"Command: `{command}`. Machine: {machine()}. Date: {datetime.date.today()}.",
        "Runs of `train.py --train ATIS --seed N` in turns with the same seeds; the ratio is",
        "the median over seeds of each pair's ratio"
        + (", each seed's time the least of its repeated runs." if repeated else "."),
        "",
        f"- default: {summary(ours)}",
        f"- with `{' '.join(baseline_flags)}`: {summary(baseline)}",
        f"- ratio default / earlier: **{ratio:.2f}x**",
    ]
    if repeated:
        rounds = [
            median_ratio(
                [o[k]["wall_seconds"] for o in ours], [b[k]["wall_seconds"] for b in baseline]
            )
            for k in range(len(ours[0]))
        ]
        lines.append(
            "- the same ratio from each round of runs alone: "
            + ", ".join(f"{r:.2f}x" for r in rounds)
        )
    lines.append(
        f"- an epoch, timed in rounds in one process: default "
        f"{costs['default']:.2f} s, earlier {costs['earlier']:.2f} s ({cost:.2f}x); the "
        "epochs each seed ran at those costs: "
        + ", ".join(f"{cost * r:.2f}x" for r in by_epochs)
        + f", median **{statistics.median(cost * r for r in by_epochs):.2f}x**"
    )
    return lines


def serving(data):
    import numpy as np
    import tensorflow as tf

    from slotkeras.data import read_utterances

    texts = [" ".join(u.tokens) for u in read_utterances(Path(data) / "test")]
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable,
                "train.py",
                "--train",
                data,
                "--output",
                f"{tmp}/m",
                "--epochs",
                "1",
                "--verbose",
                "0",
            ],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        serve = tf.saved_model.load(f"{tmp}/m/saved_model").signatures["serve"]
        # The same model exported without chunking (one batch padded to its longest
        # utterance, as before chunked serving), timed in the same rounds.
        from slotkeras.decoding import SERVE_CHUNK
        from slotkeras.saved_model_export import export_saved_model
        from slotkeras.slot_filler import SlotFiller

        export_saved_model(SlotFiller.load(f"{tmp}/m"), f"{tmp}/one_batch", chunk_size=1 << 30)
        one_batch = tf.saved_model.load(f"{tmp}/one_batch").signatures["serve"]
        for text in texts[:20]:
            serve(tf.constant([text]))
        latencies = []
        for text in texts[:500]:
            start = time.perf_counter()
            serve(tf.constant([text]))["tags"].numpy()
            latencies.append(time.perf_counter() - start)
        pool = texts * (1 + 1024 // max(len(texts), 1))  # at least 4 full batches
        batches = [pool[i : i + 256] for i in range(0, len(pool) - 255, 256)]
        runs = {serve: [], one_batch: []}
        for function in runs:
            function(tf.constant(batches[0]))
        for _ in range(5):
            for function, rates in runs.items():
                start = time.perf_counter()
                for batch in batches:
                    function(tf.constant(batch))["tags"].numpy()
                rates.append(256 * len(batches) / (time.perf_counter() - start))
    return {
        "p50_ms": 1000 * float(np.percentile(latencies, 50)),
        "p99_ms": 1000 * float(np.percentile(latencies, 99)),
        "throughput": statistics.median(runs[serve]),
        "throughput_one_batch": statistics.median(runs[one_batch]),
        "chunk": SERVE_CHUNK,
    }


def machine():
    import tensorflow as tf
    from accuracy import machine as describe

    return f"{describe()}, TensorFlow {tf.__version__}"


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "atis"))
    p.add_argument("--epochs", type=int, default=5, help="timed epochs per model (median)")
    p.add_argument("--kinds", nargs="+", default=KINDS)
    p.add_argument("--full-runs", type=int, default=3, help="train.py runs to early stop")
    p.add_argument("--quick", action="store_true", help="2 timed epochs, no full trainings")
    p.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="with --training-against: rounds of the seeds' runs; each seed's time is the "
        "least of its rounds",
    )
    p.add_argument(
        "--training-against",
        metavar="FLAGS",
        help="only time train.py to its early stop, the default against the default with "
        "these flags (an earlier default), --full-runs seeds each, in turns",
    )
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error(f"--repeats: expected a positive integer, got {args.repeats}")
    if args.quick:
        args.epochs, args.full_runs = 2, 0
    command = "python bench/speed.py " + shlex.join(argv if argv is not None else sys.argv[1:])

    if args.training_against is not None:
        flags = args.training_against.split()
        ours, baseline = training_side_by_side(args.data, args.full_runs, flags, args.repeats)
        costs = epoch_costs(args.data, flags, args.epochs)
        from accuracy import publish

        lines = side_by_side_lines(command, ours, baseline, flags, costs)
        publish("<!-- training-time:begin -->", "<!-- training-time:end -->", lines)
        return 0
    splits = load_atis(args.data)
    rows = epoch_benchmarks(splits, args.kinds, args.epochs)
    serve = serving(args.data)
    full, peak = full_trainings(args.data, args.full_runs) if args.full_runs else ([], None)

    lines = [
        "## Speed (ATIS train split, 4,478 utterances)",
        "",
        f"Command: `{command}`. Machine: {machine()}. Date: {datetime.date.today()}.",
        "Epoch times are medians of timed epochs after a warm-up epoch, all in one process,",
        "timed in rounds (one epoch of every model per round, so a slow spell of the shared",
        "machine costs each model one epoch), from Keras' epoch start to epoch end, with",
        "Python's garbage collector paused; ratios compare numbers from the same run.",
        "",
        "| model | epoch s | utterances/s | parameters | speed-up vs reference "
        "| time vs built-in LSTM (same direction) |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        vs_lstm = f"{row['vs_builtin_lstm']:.2f}x" if "vs_builtin_lstm" in row else ""
        lines.append(
            f"| {row['name']} | {row['seconds']:.2f} | {row['utterances_per_s']:.0f} | "
            f"{row['parameters']:,} | {row['vs_reference']:.2f}x | {vs_lstm} |"
        )
    lines += [
        "",
        "Serving the exported SavedModel with raw strings (one utterance per call, 500 calls;",
        "batches of 256 for throughput, median of 5 passes):",
        "",
        f"- one utterance: p50 {serve['p50_ms']:.2f} ms, p99 {serve['p99_ms']:.2f} ms",
        f"- batches of 256: {serve['throughput']:,.0f} utterances/s (chunks of "
        f"{serve['chunk']} similar lengths; the same model served as one padded batch, "
        f"in the same rounds: {serve['throughput_one_batch']:,.0f} utterances/s)",
    ]
    if full:
        walls = [r["wall_seconds"] for r in full]
        lines += [
            "",
            f"`train.py --train ATIS` to its early stop, {len(full)} seeds: median wall time "
            f"{statistics.median(walls):.0f} s (runs: {', '.join(f'{w:.0f}' for w in walls)} s; "
            f"epochs {', '.join(str(r['epochs']) for r in full)}); peak resident memory "
            f"{peak:.0f} MiB.",
        ]
    from accuracy import publish

    publish(BEGIN, END, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
