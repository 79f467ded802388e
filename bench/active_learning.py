"""Active learning, simulated: does labelling what the model is least sure of beat
labelling at random?

    python bench/active_learning.py --by span span-sum --publish   # ~180 trainings

For each corpus and draw d (0, 1, 2): the training split is shuffled with
`random.Random(d)`; its first `--start` (100) utterances are labelled and the rest are
the pool. A round trains the default model (`train.py` with no model flags, seed
d + 1) on the labelled utterances, stopping early on a fixed `--valid-size` (200)
utterances of the validation split and without the refit (which would add those 200
to the labelled ones), scores test slot F1 (with `--heldout`, the validation utterances
that stop no training instead, for choosing a measure), and adds `--step` (100)
utterances of the pool: the ones the model is least sure of by a `slotkeras rank`
measure (`--by`: `span`, `span-sum`, `entropy`, on the pool's own tokens) for a ranked
strategy, a draw of `random.Random(d, round)` for `random`. `--rounds` (9) additions: 100 to 1,000
labelled. Every strategy of a draw starts from the same utterances. One more
training on the whole training split per corpus gives the full-data F1 that the
table's last row measures against (the first N whose mean reaches 90% of it).

Each round appends a row to bench/results/active_learning.jsonl (with the labelled
utterances' indices and the next round's choice); a run that is stopped resumes from
its rows. `--publish` writes the table of `random` and the `--by` strategies (mean ±
std of the draws) and the plot
docs/active_learning.png into docs/benchmarks.md between the active-learning markers,
with the machine, the command and the date. A smoke test, no publishing:

    python bench/active_learning.py --corpora atis --start 20 --step 20 --rounds 2 \\
        --draws 1 --epochs 2 --no-full --results /tmp/al.jsonl
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

from accuracy import ROOT, commit, machine, mean_std, publish, read_rows  # noqa: E402

sys.path.insert(0, str(ROOT))

from slotkeras import data  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "bench" / "results" / "active_learning.jsonl"
PLOT = ROOT / "docs" / "active_learning.png"
BEGIN, END = "<!-- active-learning:begin -->", "<!-- active-learning:end -->"


# `span-after-random`: the first round's 100 at random, as `random` picks them, and
# `span` after: a model of 100 utterances may be too weak to say what it lacks.
# `span-sum`: the expected number of wrong decisions (the sum of 1 - confidence over the
# decisions whose lowest `span` takes), which favours utterances with more to correct.
# Tried and not kept (docs/experiments/active_learning.md): span times information
# density, half of each round by span and half at random.
RANKED = ("span", "entropy", "span-after-random", "span-sum")
# The same colour in every panel:
COLOURS = {"random": "tab:grey", "span": "tab:blue", "entropy": "tab:orange",
           "span-after-random": "tab:green", "span-sum": "tab:brown"}  # fmt: skip


def arguments(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpora", nargs="+", default=["atis", "mit_movie_trivia"])
    p.add_argument("--by", nargs="+", default=["span"], choices=RANKED,
                   help="ranked strategies run, and shown beside random")  # fmt: skip
    p.add_argument("--start", type=int, default=100)
    p.add_argument("--step", type=int, default=100)
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--draws", type=int, default=3)
    p.add_argument("--valid-size", type=int, default=200)
    p.add_argument("--epochs", type=int, default=None, help="(default: train.py's)")
    p.add_argument("--no-full", action="store_true", help="skip the full-data trainings")
    p.add_argument("--heldout", action="store_true",
                   help="score the validation utterances that stop no training, not test "
                   "(for choosing a strategy)")  # fmt: skip
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--publish", action="store_true", help="write docs/benchmarks.md")
    p.add_argument("--only-report", action="store_true", help="train nothing: report the rows")
    return p.parse_args(argv)


def train_and_score(train, valid, test, seed, epochs):
    """Trains the default model in this process: (`test`'s slot F1, the model folder,
    the loaded filler)."""
    import keras

    from slotkeras import evaluation, training
    from slotkeras.cli import config_from_args, train_parser
    from slotkeras.slot_filler import SlotFiller
    from slotkeras.splits import Splits

    keras.backend.clear_session()
    folder = Path(tempfile.mkdtemp()) / "model"
    # No refit: below 1,000 utterances the default would retrain on train + the
    # validation draw, so a round "with 100 labelled" would learn from 300.
    args = ["--output", str(folder), "--seed", str(seed), "--verbose", "0", "--no-export",
            "--no-refit"]  # fmt: skip
    args += ["--epochs", str(epochs)] if epochs else []
    config = config_from_args(train_parser().parse_args(args))
    training.train(config, log=lambda *_: None, splits=Splits(train, valid, None, None))
    filler = SlotFiller.load(folder)
    return evaluation.evaluate(filler, test)["slot_f1"], folder, filler


def choose(strategy, filler, pool, step, d, round_number):
    """The positions (in `pool`) of the next `step` utterances to label."""
    from slotkeras.ranking import entropy_uncertainty, least_sure, uncertainties

    if strategy == "random" or _random_round(strategy, round_number):
        return random.Random(f"{d}-{round_number}").sample(range(len(pool)), min(step, len(pool)))
    strategy = strategy.removesuffix("-after-random")
    tokens = [list(u.tokens) for u in pool]
    if strategy == "entropy":
        scores = []
        for start in range(0, len(tokens), 256):
            scores += entropy_uncertainty(filler, tokens[start : start + 256])
    else:  # span, span-sum: as `slotkeras rank` scores them
        scores = uncertainties(filler, filler.predict(tokens), strategy)
    return least_sure(scores, step)


def key(row) -> tuple:
    names = ("corpus", "strategy", "draw", "start", "step", "epochs", "valid_size", "scored")
    return tuple(row.get(name) for name in names)


def simulate(corpus, strategy, d, splits, args, rows, log):
    """The rounds of one corpus, strategy and draw; resumes from `rows`."""
    from slotkeras.slot_filler import SlotFiller

    order = list(range(len(splits["train"])))
    random.Random(d).shuffle(order)
    valid = list(splits["valid"])
    random.Random(d).shuffle(valid)
    valid, heldout = valid[: args.valid_size], valid[args.valid_size :]
    settings = {
        "corpus": corpus, "strategy": strategy, "draw": d, "start": args.start,
        "step": args.step, "epochs": args.epochs, "valid_size": args.valid_size,
    }  # fmt: skip
    if args.heldout:
        settings["scored"] = "heldout"
    done = [r for r in rows if key(r) == key(settings)]
    labelled = list(order[: args.start])
    if done:
        last = max(done, key=lambda r: r["labelled_count"])
        labelled = last["labelled"] + last["next"]
    score_name = "heldout_f1" if args.heldout else "test_f1"
    for round_number in range(len(done), args.rounds + 1):
        taken = set(labelled)
        pool_indices = [i for i in order if i not in taken]
        train = [splits["train"][i] for i in labelled]
        started = time.time()
        same = _same_training(rows, settings, strategy, round_number)
        if same is not None:  # training is deterministic: `random`'s own first round
            f1, filler = same[score_name], None
        else:
            scored = heldout if args.heldout else splits["test"]
            # Training is deterministic: every strategy's first round is the same model.
            trained = (corpus, d, score_name, args.epochs, tuple(labelled))
            if trained in _trained:
                f1, folder = _trained[trained]
                filler = SlotFiller.load(folder)
            else:
                f1, folder, filler = train_and_score(train, valid, scored, d + 1, args.epochs)
                _trained[trained] = (f1, folder)
        chosen = []
        if round_number < args.rounds and pool_indices:
            pool = [splits["train"][i] for i in pool_indices]
            positions = choose(strategy, filler, pool, args.step, d, round_number)
            chosen = [pool_indices[p] for p in positions]
        row = {**settings, "round": round_number, "labelled_count": len(labelled),
               score_name: f1, "seconds": round(time.time() - started, 1),
               "commit": commit(), "labelled": labelled, "next": chosen}  # fmt: skip
        append(args.results, row)
        log(f"{corpus} {strategy} draw {d}: {len(labelled)} labelled, {score_name} {f1:.2f}")
        labelled = labelled + chosen


_trained = {}  # (corpus, draw, score, epochs, labelled) -> (f1, model folder)


def _random_round(strategy, round_number) -> bool:
    """Whether a ranked strategy picks this round at random (`*-after-random`'s first)."""
    return strategy.endswith("-after-random") and round_number == 0


def _same_training(rows, settings, strategy, round_number):
    """`random`'s row of the first round, which a `*-after-random` strategy's first
    round trains again to the bit (same utterances, seed and settings), or None."""
    if not _random_round(strategy, round_number):
        return None
    wanted = key({**settings, "strategy": "random"})
    return next((r for r in rows if key(r) == wanted and r["round"] == 0), None)


def full_data(corpus, splits, args, rows, log):
    settings = {"corpus": corpus, "strategy": "full", "draw": 0, "start": None, "step": None,
                "epochs": args.epochs, "valid_size": args.valid_size}  # fmt: skip
    if any(key(r) == key(settings) for r in rows):
        return
    valid = list(splits["valid"])
    random.Random(0).shuffle(valid)
    f1, _, _ = train_and_score(
        splits["train"], valid[: args.valid_size], splits["test"], 1, args.epochs
    )
    append(args.results, {**settings, "labelled_count": len(splits["train"]), "test_f1": f1,
                          "commit": commit()})  # fmt: skip
    log(f"{corpus} full training split: test slot F1 {f1:.2f}")


def append(path: Path, row: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(row) + "\n")


def table(corpora, rows) -> list[str]:
    """One table: a row per number of labelled utterances, a column per corpus and
    strategy (mean ± std of the draws); then each corpus's full-data F1 and the first
    N whose mean reaches 90% of it."""
    columns, means = [], {}
    for corpus in corpora:
        mine = [r for r in rows if r["corpus"] == corpus and r["strategy"] != "full"]
        for strategy in sorted({r["strategy"] for r in mine}, key=lambda s: (s != "random", s)):
            columns.append((corpus, strategy))
    sizes = sorted({r["labelled_count"] for r in rows if r["strategy"] != "full"})
    out = ["| labelled | " + " | ".join(f"{c} {s}" for c, s in columns) + " |",
           "|---" * (len(columns) + 1) + "|"]  # fmt: skip
    for size in sizes:
        cells = []
        for corpus, strategy in columns:
            values = [r["test_f1"] for r in rows if r["corpus"] == corpus
                      and r["strategy"] == strategy and r["labelled_count"] == size]  # fmt: skip
            cells.append(mean_std(values))
            if values:
                means[(corpus, strategy, size)] = sum(values) / len(values)
        out.append(f"| {size} | " + " | ".join(cells) + " |")
    full_cells, reached = [], []
    for corpus, strategy in columns:
        full = [r for r in rows if r["corpus"] == corpus and r["strategy"] == "full"]
        if not full:
            full_cells.append("")
            reached.append("")
            continue
        full_cells.append(f"{full[-1]['test_f1']:.2f} ({full[-1]['labelled_count']:,})")
        bar = 0.9 * full[-1]["test_f1"]
        first = next((n for n in sizes if means.get((corpus, strategy, n), -1) >= bar), None)
        reached.append(str(first) if first is not None else f"> {sizes[-1]}")
    out.append("| full training split (utterances) | " + " | ".join(full_cells) + " |")
    out.append("| 90% of full-data F1 first reached at | " + " | ".join(reached) + " |")
    return out


def plot(rows, corpora) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(corpora), figsize=(5 * len(corpora), 3.6), squeeze=False)
    for axis, corpus in zip(axes[0], corpora):
        mine = [r for r in rows if r["corpus"] == corpus and r["strategy"] != "full"]
        for strategy in sorted({r["strategy"] for r in mine}):
            sizes = sorted({r["labelled_count"] for r in mine if r["strategy"] == strategy})
            means = []
            for size in sizes:
                values = [r["test_f1"] for r in mine
                          if r["strategy"] == strategy and r["labelled_count"] == size]  # fmt: skip
                means.append(sum(values) / len(values))
            axis.plot(sizes, means, marker="o", label=strategy, color=COLOURS.get(strategy))
        full = [r["test_f1"] for r in rows if r["corpus"] == corpus and r["strategy"] == "full"]
        if full:
            axis.axhline(0.9 * full[-1], color="black", linestyle=":", label="90% of full data")
        axis.set_title(corpus)
        axis.set_xlabel("labelled utterances")
        axis.set_ylabel("test slot F1")
        axis.legend()
    figure.tight_layout()
    figure.savefig(PLOT, dpi=120)


def publish_doc(rows, corpora, command) -> None:
    lines = [
        f"Command: `{command}` ({machine()}, {datetime.date.today().isoformat()}, commit "
        f"{commit()}). Test slot F1 (span level, conlleval) of the default model trained "
        "on N labelled utterances, mean ± std over the draws; `random` adds utterances at "
        "random, the others those the previous round's model was least sure of "
        "(`slotkeras rank --by`).",
        "",
    ]
    lines += [*table(corpora, rows), ""]
    lines.append("![test slot F1 against labelled utterances](active_learning.png)")
    publish(BEGIN, END, lines)
    plot(rows, corpora)


def main(argv=None) -> int:
    args = arguments(argv)
    command = "python bench/active_learning.py " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    for corpus in [] if args.only_report else args.corpora:
        splits = data.read_splits(SHARED / corpus)
        for d in range(args.draws):
            for strategy in ("random", *args.by):
                simulate(corpus, strategy, d, splits, args, read_rows(args.results), print)
        if not args.no_full:
            full_data(corpus, splits, args, read_rows(args.results), print)
    if args.publish:
        shown = {"random", "full", *args.by}  # the others' rows stay in the results
        rows = [r for r in read_rows(args.results)
                if r["corpus"] in args.corpora and r["strategy"] in shown]  # fmt: skip
        publish_doc(rows, args.corpora, command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
