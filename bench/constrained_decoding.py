"""Validation slot F1 of the same models decoded with and without the CRF's BIO/BIOES
constraints (`CRF(tag_names=...)`): a paired comparison, one trained model per row.

    python bench/constrained_decoding.py                     # train 3 seeds per corpus
    python bench/constrained_decoding.py --models m1 m2 ...  # score model folders
    python bench/constrained_decoding.py --only-report

Each model is `train.py --train ../shared/data/CORPUS --seed N --no-export` (early
stopping on the valid split), then decoded on the valid split twice: with the CRF's
`tag_names` (every decoded sequence well formed) and with `tag_names = None` (the
best path over every tag sequence, read with conlleval semantics: an `I-x` after
`O` opens a span). No test split is read. Rows are appended to
bench/results/constrained_decoding.jsonl; docs/benchmarks.md gets the table.
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
SHARED = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "bench" / "results" / "constrained_decoding.jsonl"
BEGIN, END = "<!-- constrained-decoding:begin -->", "<!-- constrained-decoding:end -->"
CORPORA = ("atis", "mit_movie_trivia", "resume_ner")


def score(folder: Path) -> dict:
    """Validation slot F1 of the model in `folder`, decoded both ways."""
    from slotkeras.data import read_splits
    from slotkeras.decoding import find_crf
    from slotkeras.evaluation import evaluate
    from slotkeras.slot_filler import SlotFiller

    loaded = SlotFiller.load(folder)
    config = loaded.config
    corpus = Path(config["train"]).name
    valid = read_splits(config["train"])["valid"]
    crf = find_crf(loaded.model)
    f1 = {}
    for label, names in (("unconstrained", None), ("constrained", loaded.model_tags)):
        crf.tag_names = names  # before the SlotFiller traces its functions
        filler = SlotFiller(loaded.model, loaded.model_tags, loaded.intents, config)
        f1[label] = evaluate(filler, valid)["slot_f1"]
    return {
        "corpus": corpus,
        "seed": config["seed"],
        "tag_scheme": json.loads((folder / "metrics.json").read_text()).get("tag_scheme"),
        **f1,
        "folder": str(folder),
        "date": datetime.date.today().isoformat(),
    }


def train(corpus: str, seed: int, folder: Path) -> None:
    command = [
        sys.executable, "train.py", "--train", str(SHARED / corpus), "--output", str(folder),
        "--seed", str(seed), "--verbose", "0", "--no-export",
    ]  # fmt: skip
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)


def report() -> list[str]:
    from accuracy import commit, machine

    rows = [json.loads(line) for line in RESULTS.read_text().splitlines() if line.strip()]
    lines = [
        "## Decoding that keeps to the tags' notation (bench/constrained_decoding.py)",
        "",
        f"Command: `python bench/constrained_decoding.py`. Machine: {machine()}. "
        f"Dates: {', '.join(sorted({r['date'] for r in rows}))}. Report at {commit()}.",
        "",
        "Validation slot F1 (span level, conlleval) of the same trained models (the",
        "default of each corpus, early stopping on the valid split), decoded by the",
        "best path over all tag sequences and by the best well-formed one. No test",
        "split is read.",
        "",
        "| corpus | tags | seeds | unconstrained | constrained | per seed, difference |",
        "|---|---|---|---|---|---|",
    ]
    for corpus in sorted({r["corpus"] for r in rows}):
        mine = sorted((r for r in rows if r["corpus"] == corpus), key=lambda r: r["seed"])
        plain = statistics.mean(r["unconstrained"] for r in mine)
        kept = statistics.mean(r["constrained"] for r in mine)
        deltas = ", ".join(f"{r['constrained'] - r['unconstrained']:+.2f}" for r in mine)
        lines.append(
            f"| {corpus} | {(mine[0]['tag_scheme'] or '?').upper()} | "
            f"{', '.join(str(r['seed']) for r in mine)} | {plain:.2f} | {kept:.2f} | {deltas} |"
        )
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--corpora", nargs="+", default=list(CORPORA))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--models", nargs="+", type=Path, help="model folders to score instead")
    p.add_argument("--only-report", action="store_true")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    from accuracy import publish

    if not args.only_report:
        with tempfile.TemporaryDirectory() as tmp:
            folders = args.models or []
            for corpus in [] if args.models else args.corpora:
                for seed in range(1, args.seeds + 1):
                    folder = Path(tmp) / f"{corpus}_{seed}"
                    train(corpus, seed, folder)
                    folders.append(folder)
            for folder in folders:
                row = score(folder)
                print(json.dumps(row))
                with RESULTS.open("a") as f:
                    f.write(json.dumps(row) + "\n")
    publish(BEGIN, END, report())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
