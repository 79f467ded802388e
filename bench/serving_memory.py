"""Peak memory of serving a batch through the SavedModel, with and without one huge
utterance.

    python bench/serving_memory.py     # models/default (trained by `python train.py`
                                       # when missing), 1,000 utterances, one of 5,000 words

Each figure is the peak resident memory (`ru_maxrss`) of a fresh process that loads a
SavedModel with `tf.saved_model.load`, serves one utterance (warm-up), then serves one
batch through the signature `serve` and reads its outputs as tensors. The batch: the
bundled held-out utterances as typed in the corpus, cycled to `--batch`; the huge
utterance: their words one after another up to `--long` words. Where the memory goes:
the same batch with the huge utterance alone, and with the 63 utterances that share its
chunk of 64, next to the size of the padded outputs. Two exports of the same model: the
one in the model folder (as `train.py` wrote it) and one written by this checkout's
`export_saved_model`. Results go to docs/benchmarks.md (serving-memory section).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- serving-memory:begin -->", "<!-- serving-memory:end -->"
ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0", "CUDA_VISIBLE_DEVICES": ""}


def texts(batch: int, long: int, which: str) -> list[str]:
    """The batch of `which`: "batch" (`batch` utterances), "batch+long" (and the huge
    one), "long" (the huge one alone), "chunk" (it and the 63 longest of the batch)."""
    sys.path.insert(0, str(ROOT))
    from slotkeras import data

    typed = [" ".join(u.tokens) for u in data.read_utterances(ROOT / "data" / "test.csv")]
    words = " ".join(typed).split()
    huge = " ".join((words * (1 + long // len(words)))[:long])
    ordinary = (typed * (1 + batch // len(typed)))[:batch]
    return {
        "batch": ordinary,
        "batch+long": ordinary + [huge],
        "long": [huge],
        "chunk": sorted(ordinary, key=lambda t: len(t.split()))[-63:] + [huge],
    }[which]


def status_mb(key: str) -> float:
    """A figure of /proc/self/status (VmRSS: resident now, VmHWM: its peak), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(key)


def child(saved_model: str, batch: int, long: int, which: str) -> None:
    """In a fresh process: load, warm up, serve once; prints as JSON the process's peak
    (`peak_mb`, as `saved_model_cli run` would see it), the memory resident after the
    load and warm-up (`loaded_mb`) and the peak of the serving call alone (`serve_mb`:
    the kernel's peak reset after the warm-up, by writing 5 to /proc/self/clear_refs)."""
    import tensorflow as tf

    batch_texts = texts(batch, long, which)
    serve = tf.saved_model.load(saved_model).signatures["serve"]
    serve(tf.constant(["leave taipei on november 2nd"]))
    loaded = status_mb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")
    outputs = serve(tf.constant(batch_texts))
    shape = [int(d) for d in outputs["tags"].shape]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {"loaded_mb": loaded, "serve_mb": status_mb("VmHWM"), "peak_mb": peak}
    print(json.dumps({**result, "tags_shape": shape}))


def measure(saved_model: Path, batch: int, long: int, which: str) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--child", str(saved_model), "--batch", str(batch),
         "--long", str(long), "--which", which],
        cwd=ROOT, env={**os.environ, **ENV}, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="models/default")
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--long", type=int, default=5000)
    p.add_argument("--no-doc", action="store_true", help="print, do not write the docs")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--which", default="batch", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(args.child, args.batch, args.long, args.which)
        return 0
    model = ROOT / args.model
    if not (model / "model.keras").is_file():
        subprocess.run([sys.executable, "train.py", "--output", str(model)], cwd=ROOT, check=True)
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    from accuracy import machine, publish

    with tempfile.TemporaryDirectory() as tmp:
        os.environ.update(ENV)
        import tensorflow as tf

        from slotkeras.saved_model_export import export_saved_model
        from slotkeras.slot_filler import SlotFiller

        export_saved_model(SlotFiller.load(model), Path(tmp) / "now")
        exports = {"this checkout's export": Path(tmp) / "now"}
        if (model / "saved_model" / "saved_model.pb").is_file():
            exports = {f"`{args.model}/saved_model` as trained": model / "saved_model", **exports}
        batches = ("batch", "batch+long", "long", "chunk")
        rows = {
            name: {which: measure(path, args.batch, args.long, which) for which in batches}
            for name, path in exports.items()
        }
    lines = report(args, rows, machine(), tf.__version__)
    if args.no_doc:
        print("\n".join(lines))
    else:
        publish(BEGIN, END, lines)
    return 0


def report(args, rows: dict, machine: str, tf_version: str) -> list[str]:
    command = "python bench/serving_memory.py " + " ".join(sys.argv[1:])
    width, rows_out = args.long, args.batch + 1
    # The padded outputs of the batch with the huge utterance: two string tensors
    # (tokens, tags; 32 bytes a TensorFlow string), starts and ends (int64), probabilities.
    outputs_mb = rows_out * width * (2 * 32 + 2 * 8 + 4) / 2**20
    lines = [
        f"Command: `{command.strip()}`. Machine: {machine}, TensorFlow {tf_version}. "
        f"Date: {datetime.date.today()}. Peak resident memory (MB) of a fresh process "
        f"serving one batch through the SavedModel of `{args.model}` (as "
        "`saved_model_cli run` would peak), and in brackets the serving call's own rise "
        f"above the loaded process: {args.batch:,} bundled held-out utterances; the same "
        f"with one utterance of {width:,} words; that utterance alone; it with the 63 "
        "longest of the batch (its chunk of 64 before the bound on padded positions).",
        "",
        f"| export | loaded | {args.batch:,} utterances | + one of {width:,} words | ratio | "
        "the long one alone | it and 63 others |",
        "|---|---|---|---|---|---|---|",
    ]

    def cell(figures):
        return f"{figures['peak_mb']:,.0f} (+{figures['serve_mb'] - figures['loaded_mb']:,.0f})"

    for name, row in rows.items():
        ratio = row["batch+long"]["peak_mb"] / row["batch"]["peak_mb"]
        lines.append(
            f"| {name} | {row['batch']['loaded_mb']:,.0f} | {cell(row['batch'])} | "
            f"{cell(row['batch+long'])} | {ratio:.2f}x | {cell(row['long'])} | "
            f"{cell(row['chunk'])} |"
        )
    lines += [
        "",
        f"The padded outputs alone ({rows_out:,} x {width:,}: tokens, tags, starts, ends, "
        f"probabilities) take about {outputs_mb:,.0f} MB; the signature pads every output "
        "to the batch's longest utterance.",
    ]
    return lines


if __name__ == "__main__":
    sys.exit(main())
