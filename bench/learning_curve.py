"""The learning curve: test slot F1 of the default against the CRF anchor when a user
brings N labelled utterances, not thousands.

    python bench/learning_curve.py --corpus atis --sizes 30,100,300,1000 --test

For each size N, 3 fixed draws (d = 0, 1, 2): the corpus's train and valid splits are
each shuffled with Python's `random.Random(d).shuffle`; the first N training
utterances train, the first max(20, N / 4) validation utterances stop early. The
default (`train.py` with no flags, or with `--flags`) trains on them, and the CRF
anchor of bench/crf_anchor.py trains on both together (as its anchor does).

Scores: `heldout` is span F1 on the rest of the validation split (the utterances no
draw uses), for choosing settings without the test split; `--test` also scores the
whole test split and, on the first draw, exports the SavedModel for the model folder's
size in MB. Each
run appends a row to bench/results/learning_curve.jsonl; with `--test`, docs/
benchmarks.md gets one table per corpus (mean ± std over the draws, the full-data row
of bench/accuracy.py beside it) between the learning-curve markers, and
docs/learning_curve.png the plot of test slot F1 against N.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import shlex
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from accuracy import (  # noqa: E402
    ROOT,
    commit,
    machine,
    mean_std,
    publish,
    read_rows,
    resolve_corpus,
)
from crf_anchor import C1, C2, MAX_ITERATIONS, sentence_features  # noqa: E402

sys.path.insert(0, str(ROOT))

from slotkeras import data  # noqa: E402
from slotkeras.evaluation import slot_f1  # noqa: E402

CURVE_RESULTS = ROOT / "bench" / "results" / "learning_curve.jsonl"
PLOT = ROOT / "docs" / "learning_curve.png"
CORPORA = ("atis", "mit_movie_trivia", "resume_ner")


def draw(splits: dict, size: int, d: int) -> tuple[list, list, list]:
    """Draw `d` of `size` utterances: (train, valid, the rest of the valid split)."""
    train, valid = list(splits["train"]), list(splits["valid"])
    random.Random(d).shuffle(train)
    random.Random(d).shuffle(valid)
    n_valid = max(20, size // 4)
    return train[:size], valid[:n_valid], valid[n_valid:]


def folder_megabytes(folder: Path) -> float:
    return round(sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6, 2)


def run_default(train, valid, heldout, test, flags: list[str], seed: int, export: bool) -> dict:
    """Trains `train.py`'s configuration (with `flags`) in this process; scores it."""
    import keras

    from slotkeras import evaluation, training
    from slotkeras.cli import config_from_args, train_parser
    from slotkeras.slot_filler import SlotFiller
    from slotkeras.splits import Splits

    keras.backend.clear_session()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        args = ["--output", str(folder), "--seed", str(seed), "--verbose", "0"]
        args += [] if export else ["--no-export"]
        config = config_from_args(train_parser().parse_args(args + flags))
        started = time.time()
        metrics = training.train(
            config, log=lambda *_: None, splits=Splits(train, valid, None, None)
        )
        seconds = time.time() - started
        filler = SlotFiller.load(folder)
        saved = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        row = {
            "heldout_f1": evaluation.evaluate(filler, heldout)["slot_f1"],
            "valid_f1": metrics["validation"]["slot_f1"],
            "best_epoch": metrics["best_epoch"],
            "epochs": metrics["epochs_trained"],
            "batch_size": saved["batch_size"],
            "warning": metrics.get("warning"),
            "seconds": round(seconds, 1),
        }
        if test is not None:
            row["test_f1"] = evaluation.evaluate(filler, test)["slot_f1"]
        if export:
            row["folder_mb"] = folder_megabytes(folder)
            row["deployable_mb"] = sum(
                folder_megabytes(folder / p)
                if (folder / p).is_dir()
                else round((folder / p).stat().st_size / 1e6, 2)
                for p in ("model.keras", "saved_model")
            )
        return row


def run_crf(train, valid, heldout, test) -> dict:
    import sklearn_crfsuite

    both = train + valid
    crf = sklearn_crfsuite.CRF(algorithm="lbfgs", c1=C1, c2=C2, max_iterations=MAX_ITERATIONS)
    crf.fit([sentence_features(u.tokens) for u in both], [list(u.tags) for u in both])

    def score(utterances):
        predicted = crf.predict([sentence_features(u.tokens) for u in utterances])
        return slot_f1([u.tags for u in utterances], predicted)

    row = {"heldout_f1": score(heldout)}
    if test is not None:
        row["test_f1"] = score(test)
    return row


def table(rows: list[dict]) -> list[str]:
    """The corpus's table: one row a size, one column a system, mean ± std of the draws,
    then each system's model folder in MB (its first draw's export)."""
    systems = sorted({r["system"] for r in rows}, key=lambda s: (s != "crf", s != "default", s))
    exported = [s for s in systems if any("folder_mb" in r for r in rows if r["system"] == s)]
    sizes = sorted({r["size"] for r in rows})
    head = (
        "| N | "
        + " | ".join("CRF anchor" if s == "crf" else f"`{s}`" for s in systems)
        + "".join(f" | `{s}`'s model folder (MB)" for s in exported)
        + " |"
    )
    out = [head, "|---" * (len(systems) + len(exported) + 1) + "|"]
    for size in sizes:
        cells = []
        for system in systems:
            values = [r["test_f1"] for r in rows if r["system"] == system and r["size"] == size]
            cells.append(mean_std(values) if values else "-")
        for system in exported:
            mb = [r["folder_mb"] for r in rows
                  if r["system"] == system and r["size"] == size and "folder_mb" in r]  # fmt: skip
            cells.append(f"{sum(mb) / len(mb):.1f}" if mb else "-")
        out.append(f"| {size} | " + " | ".join(cells) + " |")
    return out


def publish_doc(corpora, command: str) -> None:
    """Rewrites the section with every corpus that has test rows, not only this run's
    `corpora`, so that a run on one corpus leaves the others' tables."""
    rows = [r for r in read_rows(CURVE_RESULTS) if "test_f1" in r]
    corpora = [c for c in (*CORPORA, *corpora) if any(r["corpus"] == c for r in rows)]
    corpora = list(dict.fromkeys(corpora))
    commands = sorted({r["command"] for r in rows if r["corpus"] in corpora})
    shown = "`, `".join(commands) or command
    dates = sorted({r["date"] for r in rows if r["corpus"] in corpora and "date" in r})
    when = " to ".join(dict.fromkeys([dates[0], dates[-1]])) if dates else ""
    lines = [
        f"Commands: `{shown}` ({machine()}; run {when or datetime.date.today().isoformat()}). Test "
        "slot F1 (span level, conlleval), mean ± std of 3 draws of N training "
        "utterances (validation: max(20, N/4) utterances drawn from the validation "
        "split); each system's latest rows. A size missing from a table was not run. The "
        "full training splits' figures are in the accuracy sections above.",
        "",
    ]
    for corpus in corpora:
        mine = [r for r in rows if r["corpus"] == corpus]
        if not mine:
            continue
        latest = {}
        for r in mine:  # each system's latest run of each (size, draw)
            latest[(r["system"], r["size"], r["draw"])] = r
        lines += [f"**{corpus}**", ""] + table(list(latest.values())) + [""]
    lines.append("![test slot F1 against N](learning_curve.png)")
    publish("<!-- learning-curve:begin -->", "<!-- learning-curve:end -->", lines)
    plot(rows, corpora)


def plot(rows, corpora) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [c for c in corpora if any(r["corpus"] == c for r in rows)]
    figure, axes = plt.subplots(1, len(shown), figsize=(4.5 * len(shown), 3.6), squeeze=False)
    for axis, corpus in zip(axes[0], shown):
        latest = {}
        for r in rows:
            if r["corpus"] == corpus:
                latest[(r["system"], r["size"], r["draw"])] = r
        for system in sorted({k[0] for k in latest}):
            sizes = sorted({k[1] for k in latest if k[0] == system})
            means = [
                sum(v["test_f1"] for k, v in latest.items() if k[:2] == (system, n))
                / sum(1 for k in latest if k[:2] == (system, n))
                for n in sizes
            ]
            axis.plot(sizes, means, marker="o", label="CRF anchor" if system == "crf" else system)
        axis.set_xscale("log")
        axis.set_title(corpus)
        axis.set_xlabel("training utterances")
        axis.set_ylabel("test slot F1")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(PLOT, dpi=100)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--corpus", nargs="+", default=list(CORPORA), type=resolve_corpus)
    p.add_argument("--sizes", default="30,100,300,1000")
    p.add_argument("--draws", type=int, default=3)
    p.add_argument("--flags", default="", help="train.py flags of the configuration tried")
    p.add_argument("--system", default="default", help="the configuration's name in the rows")
    p.add_argument("--no-crf", action="store_true", help="skip the CRF anchor")
    p.add_argument("--crf-only", action="store_true")
    p.add_argument("--test", action="store_true", help="score the test split too, export")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--only-report", action="store_true", help="rewrite the tables from rows")
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    flags = shlex.split(args.flags)
    command = "python bench/learning_curve.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    if args.only_report:
        publish_doc([c.name for c in args.corpus], command)
        return 0
    CURVE_RESULTS.parent.mkdir(parents=True, exist_ok=True)
    for corpus in args.corpus:
        splits = data.read_splits(corpus.path)
        test = splits["test"] if args.test else None
        for size in sizes:
            for d in range(args.draws):
                train, valid, heldout = draw(splits, size, d)
                systems = [] if args.crf_only else [(args.system, flags)]
                systems += [] if args.no_crf else [("crf", None)]
                for system, system_flags in systems:
                    if system == "crf":
                        row = run_crf(train, valid, heldout, test)
                    else:
                        export = args.test and d == 0  # the folder's size, from one draw
                        row = run_default(
                            train, valid, heldout, test, system_flags, args.seed, export
                        )
                    row = {
                        "corpus": corpus.name,
                        "size": size,
                        "draw": d,
                        "system": system,
                        "flags": system_flags,
                        **row,
                        "commit": commit(),
                        "date": datetime.date.today().isoformat(),
                        "command": command,
                    }
                    with open(CURVE_RESULTS, "a", encoding="utf-8") as handle:
                        handle.write(json.dumps(row) + "\n")
                    print(json.dumps(row), flush=True)
    if args.test:
        publish_doc([c.name for c in args.corpus], command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
