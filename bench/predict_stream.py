"""`predict --file` on large files: peak memory against the file's length, and
throughput against the SavedModel's own batches.

    python bench/predict_stream.py --publish      # 10,000 / 100,000 / 1,000,000 lines

A model is trained for one epoch on ATIS (or `--model` names one with a
saved_model/). The ATIS test utterances, as typed text, are repeated into files of
`--sizes` lines. Each file is tagged in a fresh process the way `slotkeras predict
--file F` tags it (`prediction_stream.check_source`, then `predict_file`, JSON lines
written to /dev/null): its peak resident memory (`ru_maxrss`) and its utterances/s,
the model's loading not counted. In one more process the SavedModel (`serve`, loaded with
`tf.saved_model.load`) tags the same texts in batches of 256, as bench/speed.py
times serving (the first 20,000 lines): the reference the streamed throughput is
compared with. `--publish`
writes the table between the predict-stream markers of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from accuracy import ROOT, commit, machine, publish  # noqa: E402

sys.path.insert(0, str(ROOT))

ATIS = ROOT.parent / "shared" / "data" / "atis"
BEGIN, END = "<!-- predict-stream:begin -->", "<!-- predict-stream:end -->"
SERVED_LINES = 20_000  # the SavedModel's reference: the first lines of the largest file


def arguments(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, help="a model folder with saved_model/")
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    p.add_argument("--publish", action="store_true")
    p.add_argument("--child", nargs=2, metavar=("KIND", "FILE"), help=argparse.SUPPRESS)
    return p.parse_args(argv)


def texts() -> list[str]:
    from slotkeras.data import read_utterances

    return [" ".join(u.tokens) for u in read_utterances(ATIS / "test")]


def child(kind: str, path: str, model: Path) -> dict:
    """Runs in its own process: tags `path` as predict does (`stream`), or its texts
    with the SavedModel in batches of 256 (`served`)."""
    if kind == "served":
        with open(path, encoding="utf-8") as handle:
            lines = [line.rstrip("\n") for _, line in zip(range(SERVED_LINES), handle)]
        import tensorflow as tf

        serve = tf.saved_model.load(str(model / "saved_model")).signatures["serve"]
        serve(tf.constant(lines[:256]))
        started = time.perf_counter()
        for start in range(0, len(lines), 256):
            serve(tf.constant(lines[start : start + 256]))["tags"].numpy()
        count = len(lines)
    else:
        from slotkeras import prediction_stream
        from slotkeras.prediction_writers import PredictionWriter
        from slotkeras.slot_filler import SlotFiller

        filler = SlotFiller.load(model)
        filler.tag_text(["warm up the graph"] * 256)
        with open(os.devnull, "w", encoding="utf-8") as sink:
            started = time.perf_counter()
            prediction_stream.check_source(path, "lines")  # predict's pass before tagging
            count = prediction_stream.predict_file(
                filler, path, PredictionWriter(sink, "jsonl"), kind="lines", progress=False
            )
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"kind": kind, "lines": count, "seconds": seconds, "per_second": count / seconds,
            "peak_mb": round(peak, 1)}  # fmt: skip


def measure(kind, path, model) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--model", str(model), "--child", kind, str(path)],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(result.stdout.strip().splitlines()[-1])


def trained_model(folder: Path) -> Path:
    subprocess.run(
        [sys.executable, "train.py", "--train", str(ATIS), "--output", str(folder / "m"),
         "--epochs", "1", "--verbose", "0"],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    return folder / "m"


def main(argv=None) -> int:
    args = arguments(argv)
    if args.child:
        print(json.dumps(child(*args.child, args.model)))
        return 0
    command = "python bench/predict_stream.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = args.model or trained_model(tmp)
        pool, rows = texts(), []
        for size in args.sizes:
            path = tmp / f"{size}.txt"
            with open(path, "w", encoding="utf-8") as handle:
                for i in range(size):
                    handle.write(pool[i % len(pool)] + "\n")
            rows.append(measure("stream", path, model))
            print(rows[-1], flush=True)
        served = measure("served", tmp / f"{max(args.sizes)}.txt", model)
        print(served, flush=True)
    lines = [
        f"Command: `{command}` ({machine()}, {datetime.date.today().isoformat()}, commit "
        f"{commit()}). `predict --file` on ATIS test utterances repeated to N lines, each "
        "N in a fresh process (model loading not counted); the SavedModel's own batches "
        f"of 256 on {served['lines']:,} of those lines: {served['per_second']:,.0f} "
        "utterances/s.",
        "",
        "| lines | peak memory (MB) | utterances/s | of the SavedModel's |",
        "|---:|---:|---:|---:|",
    ]
    for row in rows:
        share = row["per_second"] / served["per_second"]
        lines.append(f"| {row['lines']:,} | {row['peak_mb']:,.0f} | "
                     f"{row['per_second']:,.0f} | {share:.2f} |")  # fmt: skip
    if args.publish:
        publish(BEGIN, END, lines)
    else:
        print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
