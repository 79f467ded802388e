"""The choice of the defaults (issue 16): variants of train.py's settings scored on the
validation splits of every corpus in ../shared/data together. No test split is read.

    python bench/validation_sweep.py                       # every variant, seed 1
    python bench/validation_sweep.py --variants base do5 --seeds 2
    python bench/validation_sweep.py --only-report

Two protocols:
- "valid": `train.py --train CORPUS` (train split; early stopping on the valid split),
  scored by the valid split's slot F1 in metrics.json (the selected epoch's);
- "heldout", for settings that train on the validation data (`--refit`): `train.py
  --train CORPUS/train` (a fixed tenth of the train split held out for early stopping),
  then `evaluate.py` on the valid split, which the run has never seen.
Variants are flags relative to the code's defaults as they stand; `base` is the default
itself, so a row says what its flags change. Every finished run is appended to
bench/results/validation_sweep.jsonl (rows record the commit, so rows taken under
another default stay readable); the table in docs/benchmarks.md is rebuilt from it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from accuracy import commit, machine, publish  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "validation_sweep.jsonl"
DATA = ROOT.parent / "shared" / "data"
CORPORA = ["atis", "mit_movie_trivia", "resume_ner"]
BEGIN, END = "<!-- validation-sweep:begin -->", "<!-- validation-sweep:end -->"
# name: (protocol, flags) — flags relative to the defaults of the commit the row was run at.
VARIANTS = {
    "base": ("valid", []),
    "pairs": ("valid", ["--pair-buckets", "65536"]),
    "cnn": ("valid", ["--char-filters", "64"]),
    "do4": ("valid", ["--dropout", "0.4"]),
    "do5": ("valid", ["--dropout", "0.5"]),
    "do5pairs": ("valid", ["--dropout", "0.5", "--pair-buckets", "65536"]),
    "do4pairs": ("valid", ["--dropout", "0.4", "--pair-buckets", "65536"]),
    "u256": ("valid", ["--units", "256"]),
    "lr5": ("valid", ["--learning-rate", "0.005"]),
    "wd0": ("valid", ["--word-dropout", "0.05"]),
    "wd3": ("valid", ["--word-dropout", "0.3"]),
    "l2": ("valid", ["--layers", "2"]),
    "nolex": ("valid", ["--lexicon", "none"]),
    "ema995": ("valid", ["--weight-averaging", "0.995"]),
    "bioes": ("valid", ["--tag-scheme", "bioes"]),
    "rwd1": ("valid", ["--rare-word-dropout", "1"]),
    "rwd025": ("valid", ["--rare-word-dropout", "0.25"]),
    "vd": ("valid", ["--variational-dropout"]),
    "clip1": ("valid", ["--clipnorm", "1"]),
    "pat3": ("valid", ["--patience", "3"]),
    "lr15": ("valid", ["--learning-rate", "0.015"]),
    "clip2": ("valid", ["--clipnorm", "2"]),
    "clip3": ("valid", ["--clipnorm", "3"]),
    "summedadam": ("valid", ["--optimizer", "summed_adam"]),
    "lrd9": ("valid", ["--learning-rate-decay", "0.9"]),
    "lrd95": ("valid", ["--learning-rate-decay", "0.95"]),
    "iw2": ("valid", ["--intent-loss-weight", "2"]),
    "iw10": ("valid", ["--intent-loss-weight", "10"]),
    "pd16": ("valid", ["--pair-dim", "16"]),
    "b128": ("valid", ["--batch-size", "128"]),
    "hbase": ("heldout", []),
    "hrefit": ("heldout", ["--refit"]),
    "hr128": ("heldout", ["--refit", "--batch-size", "128"]),
    "hc2": ("heldout", ["--dropout", "0.5", "--pair-buckets", "65536", "--refit"]),
    "hc3": (
        "heldout",
        ["--dropout", "0.5", "--pair-buckets", "65536", "--refit", "--batch-size", "128"],
    ),
}


def run_one(variant: str, corpus: str, seed: int) -> dict:
    protocol, flags = VARIANTS[variant]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    train = DATA / corpus if protocol == "valid" else DATA / corpus / "train"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        command = [
            sys.executable, "train.py", "--train", str(train), "--output", str(folder),
            "--seed", str(seed), "--verbose", "0", "--no-export", *flags,
        ]  # fmt: skip
        subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)
        metrics = json.loads((folder / "metrics.json").read_text())
        if protocol == "valid":
            report = metrics["validation"]
        else:
            path = Path(tmp) / "valid.json"
            subprocess.run(
                [sys.executable, "evaluate.py", "--model", str(folder), "--data",
                 str(DATA / corpus / "valid"), "--report-json", str(path)],
                cwd=ROOT, env=env, check=True, capture_output=True,
            )  # fmt: skip
            report = json.loads(path.read_text())
    return row(variant, corpus, seed, protocol, flags, metrics, report)


def row(variant, corpus, seed, protocol, flags, metrics, report) -> dict:
    return {
        "variant": variant,
        "protocol": protocol,
        "flags": flags,
        "corpus": corpus,
        "seed": seed,
        "valid_slot_f1": report["slot_f1"],
        "valid_intent_accuracy": report.get("intent_accuracy"),
        "best_epoch": metrics["best_epoch"],
        "epochs": metrics["epochs_trained"],
        "train_seconds": metrics["train_seconds"],
        "commit": commit(),
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
    }


def mean(values):
    return statistics.mean(values) if values else None


def report(rows: list[dict], command: str) -> list[str]:
    by = {}
    for r in rows:
        by.setdefault((r["variant"], r["commit"]), {}).setdefault(r["corpus"], []).append(r)
    lines = [
        "## Choosing the defaults on the validation splits (bench/validation_sweep.py)",
        "",
        f"Command: `{command}`; `--only-report` rebuilds this from",
        "`bench/results/validation_sweep.jsonl`. Machine: "
        + "; ".join(sorted({r["machine"] for r in rows}))
        + ". Dates: "
        + ", ".join(sorted({r["date"] for r in rows}))
        + ".",
        "",
        "Validation slot F1 (span level, conlleval), mean over the seeds run (n); flags are",
        "relative to the defaults of the commit in the row. `heldout` rows train on the train",
        "split alone (a tenth held out for early stopping) and score the valid split, so that",
        "`--refit`, which trains on its held-out tenth too, is scored on unseen data; compare",
        "them with each other only. No test split is read.",
        "",
        "| variant | flags | commit | protocol | " + " | ".join(CORPORA) + " | mean of 3 "
        "| ATIS valid intent | median train s (ATIS) |",
        "|---|---|---|---|" + "---|" * len(CORPORA) + "---|---|---|",
    ]
    for (variant, sha), corpora in by.items():
        cells, means = [], []
        for corpus in CORPORA:
            runs = corpora.get(corpus, [])
            value = mean([r["valid_slot_f1"] for r in runs])
            cells.append(f"{value:.2f} ({len(runs)})" if value is not None else "-")
            means.append(value)
        overall = f"{mean(means):.2f}" if None not in means else "-"
        atis = corpora.get("atis", [])
        intent = mean([r["valid_intent_accuracy"] for r in atis if r["valid_intent_accuracy"]])
        seconds = statistics.median(r["train_seconds"] for r in atis) if atis else None
        first = next(iter(corpora.values()))[0]
        lines.append(
            f"| {variant} | `{' '.join(first['flags']) or '(defaults)'}` | {sha} | "
            f"{first['protocol']} | " + " | ".join(cells) + f" | {overall} | "
            f"{'-' if intent is None else f'{intent:.2f}'} | "
            f"{'-' if seconds is None else f'{seconds:.0f}'} |"
        )
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=list(VARIANTS))
    p.add_argument("--corpora", nargs="+", default=CORPORA)
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--first-seed", type=int, default=1)
    p.add_argument("--only-report", action="store_true")
    args = p.parse_args(argv)
    command = "python bench/validation_sweep.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    if not args.only_report:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        for variant in args.variants:
            for corpus in args.corpora:
                for seed in range(args.first_seed, args.first_seed + args.seeds):
                    result = run_one(variant, corpus, seed)
                    with open(RESULTS, "a", encoding="utf-8") as handle:
                        handle.write(json.dumps(result) + "\n")
                    print(f"{variant} {corpus} seed {seed}: {result['valid_slot_f1']:.2f}")
    rows = [json.loads(line) for line in RESULTS.read_text().splitlines() if line.strip()]
    publish(BEGIN, END, report(rows, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
