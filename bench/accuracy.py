"""Accuracy benchmark on ATIS: every network kind, both directions, each encoding.

    python bench/accuracy.py                      # the whole table, 3 seeds each
    python bench/accuracy.py --kinds default --ablations --seeds 3   # the default only
    python bench/accuracy.py --kinds lstm gru --directions bi --seeds 1
    python bench/accuracy.py --only-report        # rewrite the table from saved runs

Each run is `train.py --train ATIS ...` in a fresh process (settings chosen on the
validation split; early stopping on validation slot F1) followed by `evaluate.py` on
the test split. Every finished run is appended to bench/results/accuracy.jsonl, so an
interrupted benchmark loses nothing; the table in docs/benchmarks.md is rebuilt from
that file: mean ± sample std over seeds of span-level slot F1 (conlleval semantics).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "accuracy.jsonl"
DOC = ROOT / "docs" / "benchmarks.md"
KINDS = ["feedforward", "elman", "jordan", "gru", "lstm", "peephole_lstm"]
PUBLISHED = [
    ("Jordan RNN", "Mesnil et al. 2015 (IEEE/ACM TASLP)", "94.29"),
    ("Elman RNN", "Mesnil et al. 2015", "94.98"),
    ("LSTM", "Yao et al. 2014 (SLT)", "94.85"),
    ("deep LSTM", "Yao et al. 2014", "95.08"),
    ("attention BiRNN", "Liu & Lane 2016 (Interspeech)", "95.98"),
    ("slot-gated", "Goo et al. 2018 (NAACL)", "95.2"),
    ("stack-propagation", "Qin et al. 2019 (EMNLP)", "95.9"),
    ("linear-chain CRF, word-window features", "measured on this machine (issue 5)", "about 93.2"),
    ("plain 40-line Keras BiLSTM", "measured on this machine (issue 5)", "about 94.7"),
]
BEGIN, END = "<!-- accuracy:begin -->", "<!-- accuracy:end -->"
# Ablations of the default configuration: one choice changed at a time.
ABLATIONS = {
    "onehot": ["--encoding", "onehot"],
    "hash": ["--encoding", "hash"],
    "softmax": ["--output-layer", "softmax"],
    "no-feedback": ["--no-slot-intent-feedback"],
    "two-layers": ["--layers", "2"],
}


def run_one(
    data: str, kind: str, bidirectional: bool, encoding: str | None, seed: int, extra: list[str]
) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        cmd = [
            sys.executable,
            "train.py",
            "--train",
            data,
            "--output",
            str(folder),
            "--seed",
            str(seed),
            "--verbose",
            "0",
            "--no-export",
        ]
        if kind != "default":
            cmd += ["--model", kind, "--bidirectional" if bidirectional else "--no-bidirectional"]
        if encoding:
            cmd += ["--encoding", encoding]
        cmd += extra
        started = time.time()
        subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, text=True)
        seconds = time.time() - started
        report = Path(tmp) / "test.json"
        subprocess.run(
            [
                sys.executable,
                "evaluate.py",
                "--model",
                str(folder),
                "--data",
                str(Path(data) / "test"),
                "--report-json",
                str(report),
            ],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        test = json.loads(report.read_text())
        metrics = json.loads((folder / "metrics.json").read_text())
        config = json.loads((folder / "config.json").read_text())
    return {
        "kind": kind,
        "model": config["model"],
        "bidirectional": config["bidirectional"],
        "encoding": config["encoding"],
        "output_layer": config["output_layer"],
        "layers": config["layers"],
        "units": config["units"],
        "optimizer": config["optimizer"],
        "learning_rate": config["learning_rate"],
        "weight_averaging": config["weight_averaging"],
        "intent_loss_weight": _train_config(config).effective_intent_loss_weight,
        "patience": config["patience"],
        "word_dropout": config["word_dropout"],
        "dropout": config["dropout"],
        "learning_rate_decay": config.get("learning_rate_decay", 1.0),
        "extra": extra,
        "seed": seed,
        "valid_slot_f1": metrics["validation"]["slot_f1"],
        "test_slot_f1": test["slot_f1"],
        "test_intent_accuracy": test.get("intent_accuracy"),
        "parameters": metrics["parameters"],
        "train_seconds": metrics["train_seconds"],
        "wall_seconds": round(seconds, 1),
        "epochs": metrics["epochs_trained"],
        "best_epoch": metrics["best_epoch"],
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
    }


def _train_config(values: dict | None = None):
    """A `TrainConfig` of the project beside this script: the defaults, or `values`."""
    sys.path.insert(0, str(ROOT))
    from slotkeras.config import TrainConfig

    return TrainConfig.from_dict(values) if values is not None else TrainConfig()


def _default_row() -> dict:
    """What a row of the default configuration, as `train.py` has it now, holds."""
    config = _train_config()
    return {
        "bidirectional": config.bidirectional,
        "encoding": config.encoding,
        "output_layer": config.output_layer,
        "optimizer": config.optimizer,
        "learning_rate": config.learning_rate,
        "weight_averaging": config.weight_averaging,
        "intent_loss_weight": config.effective_intent_loss_weight,
        "patience": config.patience,
        "word_dropout": config.word_dropout,
        "dropout": config.dropout,
        "learning_rate_decay": config.learning_rate_decay,
        "extra": [],
    }


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def training(row) -> str:
    """Optimizer, learning rate (and its decay), weight averaging, intent-loss weight and
    patience of a run, and its dropout and word dropout (rows saved before these were
    recorded were trained with Adam 5e-3, no decay, no averaging, an intent-loss weight
    of 0.5, patience 6, dropout 0.3 and word dropout 0.05)."""
    averaging = row.get("weight_averaging", 0.0)
    text = f"{row.get('optimizer', 'adam')} {row.get('learning_rate', 5e-3):g}"
    if row.get("learning_rate_decay", 1.0) != 1.0:
        text += f" x{row['learning_rate_decay']:g}/epoch"
    if averaging:
        text += f", averaged {averaging:g}"
    text += f", intent x{row.get('intent_loss_weight', 0.5):g}"
    text += f", patience {row.get('patience', 6)}"
    text += f", dropout {row.get('dropout', 0.3):g}"
    return text + f", word dropout {row.get('word_dropout', 0.05):g}"


def label(row) -> str:
    name = "default" if row["kind"] == "default" else row["model"]
    direction = "bi" if row["bidirectional"] else "uni"
    extra = " ".join(row["extra"])
    return (
        f"{name} | {direction} | {row['encoding']} | {row['output_layer']} | "
        f"{training(row)} | {extra}"
    )


def table(rows) -> str:
    groups: dict[str, list] = {}
    for row in rows:
        groups.setdefault(label(row), []).append(row)
    lines = [
        "| configuration | direction | encoding | output | training | extra flags | seeds "
        "| valid slot F1 | **test slot F1** | test intent acc. | parameters | train s (median) "
        "| epochs (median) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    # The current default first, then earlier defaults, then the rest.
    current = label({"kind": "default", **_default_row()})
    for key in sorted(groups, key=lambda k: (k != current, not k.startswith("default"), k)):
        runs = groups[key]
        lines.append(
            f"| {key} | {len(runs)} | {mean_std([r['valid_slot_f1'] for r in runs])} | "
            f"**{mean_std([r['test_slot_f1'] for r in runs])}** | "
            f"{mean_std([r['test_intent_accuracy'] for r in runs])} | {runs[0]['parameters']:,} | "
            f"{statistics.median(r['train_seconds'] for r in runs):.0f} | "
            f"{statistics.median(r['epochs'] for r in runs):.0f} |"
        )
    return "\n".join(lines)


def write_doc(rows, command: str) -> None:
    machines = sorted({r["machine"] for r in rows})
    dates = sorted({r["date"] for r in rows})
    commands = "\n".join(f"- `{c}`" for c in dict.fromkeys(r.get("command", command) for r in rows))
    published = "\n".join(f"| {n} | {s} | {f} |" for n, s, f in PUBLISHED)
    section = f"""{BEGIN}
## Accuracy on ATIS (test split, span-level slot F1, conlleval semantics)

Commands (each appends its rows to `bench/results/accuracy.jsonl`;
`python bench/accuracy.py --only-report` rebuilds this table from it):
{commands}

Data: `../shared/data/atis` (4,478 train / 500 valid / 893 test, the split of Goo et al.
2018). Early stopping and every setting use the validation split only; the test split is
scored once per run. Mean ± sample standard deviation over seeds; no pretrained embeddings.
Machine: {"; ".join(machines)}. Dates: {", ".join(dates)}.

{table(rows)}

Published RNN results on the same test set, for comparison:

| model | source | slot F1 |
|---|---|---|
{published}
{END}"""
    replace_section(BEGIN, END, section)


def replace_section(begin: str, end: str, section: str) -> None:
    """Puts `section` (which starts with `begin` and ends with `end`) into
    docs/benchmarks.md in place of the old one, or at the end of the file."""
    text = DOC.read_text(encoding="utf-8") if DOC.is_file() else "# Benchmarks\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text, encoding="utf-8")


def publish(begin: str, end: str, lines: list[str]) -> None:
    """Writes `lines` as the section between `begin` and `end` of docs/benchmarks.md
    and prints them."""
    section = "\n".join(lines)
    replace_section(begin, end, f"{begin}\n{section}\n{end}")
    print(section)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "atis"))
    p.add_argument(
        "--kinds",
        nargs="+",
        default=["default"] + KINDS,
        help="'default' is train.py's default configuration",
    )
    p.add_argument("--directions", nargs="+", choices=["uni", "bi"], default=["uni", "bi"])
    p.add_argument(
        "--ablations",
        nargs="*",
        choices=sorted(ABLATIONS),
        default=sorted(ABLATIONS),
        help="variants of the default configuration run beside it (default: all)",
    )
    p.add_argument("--skip-default", action="store_true", help="run only the ablations")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--first-seed", type=int, default=1)
    p.add_argument(
        "--extra",
        nargs=argparse.REMAINDER,
        default=[],
        help="flags passed to train.py for every run (must come last)",
    )
    p.add_argument("--only-report", action="store_true")
    args = p.parse_args(argv)
    command = "python bench/accuracy.py " + " ".join(argv if argv is not None else sys.argv[1:])

    if not args.only_report:
        plan = []
        for kind in args.kinds:
            if kind == "default":
                if not args.skip_default:
                    plan.append(("default", True, None, []))
                for ablation in args.ablations:
                    flags = ABLATIONS[ablation]
                    encoding = flags[1] if flags[0] == "--encoding" else None
                    plan.append(("default", True, encoding, [] if encoding else flags))
                continue
            for direction in args.directions:
                if kind == "feedforward" and direction == "bi":
                    continue  # no memory, no direction: the same network
                plan.append((kind, direction == "bi", None, []))
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        for kind, bidirectional, encoding, flags in plan:
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                row = run_one(args.data, kind, bidirectional, encoding, seed, flags + args.extra)
                row["command"] = command
                with open(RESULTS, "a", encoding="utf-8") as handle:
                    handle.write(json.dumps(row) + "\n")
                print(
                    f"{label(row)} seed {seed}: valid {row['valid_slot_f1']:.2f} "
                    f"test {row['test_slot_f1']:.2f} ({row['train_seconds']:.0f} s)",
                    flush=True,
                )
    rows = [json.loads(line) for line in RESULTS.read_text().splitlines() if line.strip()]
    write_doc(rows, command)
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
