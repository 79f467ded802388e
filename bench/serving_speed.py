"""Serving speed of the SavedModel now against an earlier revision's export, side by side.

    python bench/serving_speed.py                 # against de2c1cb, the export before
                                                  # the raw-text tokenizer and offsets
    python bench/serving_speed.py --rev HEAD~3 --rounds 5

One model (the default trained for one epoch on ATIS, so that it has ATIS's tag set)
is exported twice: by this checkout's `export_saved_model`, and by the
`export_saved_model` of `slotkeras/predictor.py` at `--rev` (read with `git show`,
run against this checkout's model). Both are loaded with `tf.saved_model.load` and
timed call by call, interleaved (each call of one export next to the same call of the
other, which goes first alternating), on ATIS test utterances typed as they are in
the corpus: one utterance per call (p50 over all calls) and batches of 256
(utterances/s from the median batch time). Results go to docs/benchmarks.md.
"""

from __future__ import annotations

import datetime
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- serving-speed:begin -->", "<!-- serving-speed:end -->"


def module_of_revision(rev: str, name: str, tmp: Path):
    """`slotkeras/NAME.py` as it was at `rev`, imported under another name."""
    source = subprocess.run(
        ["git", "show", f"{rev}:slotkeras/{name}.py"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    path = tmp / f"{name}_at_revision.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(f"{name}_at_revision", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while defining
    spec.loader.exec_module(module)
    return module


def export_of_revision(rev: str, tmp: Path):
    """The `export_saved_model` function of `slotkeras/predictor.py` at `rev`, with
    that revision's `features` (its whitespace tokenizer)."""
    predictor = module_of_revision(rev, "predictor", tmp)
    predictor.features = module_of_revision(rev, "features", tmp)
    return predictor.export_saved_model


def main(argv=None) -> int:
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    from accuracy import machine, publish, timing_parser

    p = timing_parser(__doc__, rounds=20)
    p.add_argument("--rev", default="de2c1cb")
    p.add_argument("--calls", type=int, default=300, help="one-utterance calls per round")
    args = p.parse_args(argv)
    import tensorflow as tf

    from slotkeras import data
    from slotkeras.saved_model_export import export_saved_model
    from slotkeras.slot_filler import SlotFiller

    texts = [" ".join(u.tokens) for u in data.read_utterances(Path(args.data) / "test")]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        subprocess.run(
            [sys.executable, "train.py", "--train", args.data, "--output", str(tmp / "m"),
             "--epochs", "1", "--verbose", "0", "--no-export"],
            cwd=ROOT, env=env, check=True, capture_output=True,
        )  # fmt: skip
        filler = SlotFiller.load(tmp / "m")
        export_saved_model(filler, tmp / "now")
        export_of_revision(args.rev, tmp)(filler, tmp / "before")
        serves = {
            name: tf.saved_model.load(str(tmp / name)).signatures["serve"]
            for name in ("now", "before")
        }
        pool = texts * (1 + 1024 // max(len(texts), 1))
        batches = [pool[i : i + 256] for i in range(0, len(pool) - 255, 256)]
        for serve in serves.values():  # warm-up: every trace, every shape class
            for text in texts[:20]:
                serve(tf.constant([text]))
            serve(tf.constant(batches[0]))
        # Calls interleaved one by one, the first export of each pair alternating:
        # the two exports see the same machine within milliseconds of each other
        # (this machine drifts by 30% between processes and by 10% within minutes).
        latencies = {name: [] for name in serves}
        batch_times = {name: [] for name in serves}
        names = list(serves)
        for round_ in range(args.rounds):
            for i, text in enumerate(texts[: args.calls]):
                for name in names if (round_ + i) % 2 == 0 else names[::-1]:
                    start = time.perf_counter()
                    serves[name](tf.constant([text]))["tags"].numpy()
                    latencies[name].append(time.perf_counter() - start)
            for i, batch in enumerate(batches):
                for name in names if (round_ + i) % 2 == 0 else names[::-1]:
                    start = time.perf_counter()
                    serves[name](tf.constant(batch))["tags"].numpy()
                    batch_times[name].append(time.perf_counter() - start)
    p50 = {name: 1000 * float(np.percentile(v, 50)) for name, v in latencies.items()}
    rate = {name: 256 / statistics.median(v) for name, v in batch_times.items()}
    # The ratio of each pair of calls made back to back: the least disturbed by drift.
    ratios = {
        "latency": [a / b for a, b in zip(latencies["now"], latencies["before"], strict=True)],
        "throughput": [
            b / a for a, b in zip(batch_times["now"], batch_times["before"], strict=True)
        ],
    }
    command = "python bench/serving_speed.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    lines = [
        f"Command: `{command.strip()}`. Machine: {machine()}, TensorFlow {tf.__version__}. "
        f"Date: {datetime.date.today()}. One model (the default after one ATIS epoch, "
        f"{len(filler.tags)} tags, CRF), exported by this revision and by `{args.rev}`, timed "
        f"call by call, interleaved, in {args.rounds} rounds of {args.calls} single "
        f"utterances and {len(batches)} batches of 256; ATIS test utterances.",
        "",
        "| export | outputs | one utterance p50 ms | batches of 256, utterances/s |",
        "|---|---|---|---|",
        f"| `{args.rev}` (tf.saved_model.save, whitespace split) | tokens, tags, intent | "
        f"{p50['before']:.2f} | {rate['before']:,.0f} |",
        "| this revision (ExportArchive, raw-text tokenizer, CRF marginals) | + starts, ends, "
        f"tag_probabilities | {p50['now']:.2f} | {rate['now']:,.0f} |",
        "",
        f"Ratios (this revision / `{args.rev}`): latency {p50['now'] / p50['before']:.2f}x, "
        f"throughput {rate['now'] / rate['before']:.2f}x. Median of the ratios of the pairs "
        "of calls made back to back: "
        + ", ".join(
            f"{key} {statistics.median(v):.2f}x (quartiles "
            f"{np.percentile(v, 25):.2f}-{np.percentile(v, 75):.2f}, {len(v)} pairs)"
            for key, v in ratios.items()
        )
        + ".",
    ]
    publish(BEGIN, END, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
