"""What an ensemble of default models would give on ATIS (issue 5), at what cost.

    python bench/ensemble.py                 # seeds 1-5, about 6 minutes on 2 cores
    python bench/ensemble.py --seeds 1 2 3

Trains the default configuration once per seed (`train.py --train ATIS --seed N`),
scores each model on the test split, then the ensembles of the first 2, 3, ... members
(in the order of `--seeds`): the slot tags are the Viterbi
path of the summed scores of all members (their emissions and their CRF transitions
averaged, which is the path with the highest total score over the members), and the
intent the highest mean probability. Not a default: it costs one training per member.
Writes docs/experiments/ensemble.md (an ensemble is not the default: a record, not
part of the reference page).
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from slotkeras.datasets import pad_tokens

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
BEGIN, END = "<!-- ensemble:begin -->", "<!-- ensemble:end -->"
EXPERIMENT = Path(__file__).resolve().parents[1] / "docs" / "experiments" / "ensemble.md"


def member_scores(fillers, token_lists, batch_size=128):
    """Per member: emissions of each utterance (`[words, tags]`) and intent
    probabilities (`[utterances, intents]`)."""
    import numpy as np
    import tensorflow as tf

    out = []
    for filler in fillers:
        emissions, intents = [None] * len(token_lists), []
        for start in range(0, len(token_lists), batch_size):
            chunk = token_lists[start : start + batch_size]
            padded = tf.constant(pad_tokens(chunk).astype(str))
            outputs = filler.model(padded, training=False)
            slots = outputs["slots"].numpy()
            for row, tokens in enumerate(chunk):
                emissions[start + row] = slots[row, : len(tokens)]
            intents.append(outputs["intent"].numpy())
        out.append((emissions, np.concatenate(intents)))
    return out


def ensemble_decode(fillers, scores, token_lists):
    """Tag ids and intent ids of the ensemble (see the module docstring)."""
    import numpy as np
    import tensorflow as tf

    from slotkeras.decoding import find_crf

    crfs = [find_crf(f.model) for f in fillers]
    names = ("transitions", "start_transitions", "end_transitions")
    mean_weights = {
        name: np.mean([getattr(crf, name).numpy() for crf in crfs], axis=0) for name in names
    }
    decoder = crfs[0]
    saved = {name: getattr(decoder, name).numpy() for name in names}
    for name in names:
        getattr(decoder, name).assign(mean_weights[name])
    try:
        tags = []
        for i, tokens in enumerate(token_lists):
            emission = np.mean([member[0][i] for member in scores], axis=0)
            path = decoder.decode(tf.constant(emission[None]), tf.ones([1, len(tokens)], tf.bool))
            tags.append(path.numpy()[0])
    finally:
        for name in names:
            getattr(decoder, name).assign(saved[name])
    intents = np.mean([member[1] for member in scores], axis=0).argmax(axis=1)
    return tags, intents


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "atis"))
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    args = p.parse_args(argv)
    command = "python bench/ensemble.py " + " ".join(argv if argv is not None else sys.argv[1:])

    import speed

    from slotkeras.data import read_utterances
    from slotkeras.evaluation import report
    from slotkeras.slot_filler import SlotFiller

    test = read_utterances(Path(args.data) / "test")
    token_lists = [list(u.tokens) for u in test]
    gold_tags = [list(u.tags) for u in test]
    gold_intents = [u.intent for u in test]
    with tempfile.TemporaryDirectory() as tmp:
        fillers, walls = [], []
        for seed in args.seeds:
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "train.py", "--train", args.data, "--seed", str(seed),
                 "--output", f"{tmp}/s{seed}", "--verbose", "0", "--no-export"],
                cwd=ROOT, check=True, capture_output=True,
            )  # fmt: skip
            walls.append(time.perf_counter() - start)
            fillers.append(SlotFiller.load(f"{tmp}/s{seed}"))
        names = fillers[0].tags
        if any(f.tags != names or f.intents != fillers[0].intents for f in fillers):
            raise SystemExit("error: the members' label lists differ")

        def scored(tag_ids, intent_ids):
            result = report(
                gold_tags,
                [[names[t] for t in row] for row in tag_ids],
                gold_intents,
                [fillers[0].intents[i] for i in intent_ids],
                known_tags=names,
            )
            return result["slot_f1"], result["intent_accuracy"]

        members = []
        for filler in fillers:
            tag_ids, _, intent_ids, _ = filler.predict_ids(token_lists)
            members.append(scored(tag_ids, intent_ids))
        scores = member_scores(fillers, token_lists)
        # Self-check: an ensemble of one member decodes as the member does.
        alone, _ = ensemble_decode(fillers[:1], scores[:1], token_lists)
        own, *_ = fillers[0].predict_ids(token_lists)
        if any(list(a) != list(b) for a, b in zip(alone, own, strict=True)):
            raise SystemExit("error: a one-member ensemble decodes differently from its member")
        # Ensembles of the first k members, k = 2 .. all.
        together = {
            k: scored(*ensemble_decode(fillers[:k], scores[:k], token_lists))
            for k in range(2, len(fillers) + 1)
        }

    f1s = [m[0] for m in members]
    lines = [
        "## An ensemble of default models (issue 5; not a default)",
        "",
        f"Command: `{command.strip()}`. Machine: {speed.machine()}. "
        f"Date: {datetime.date.today()}. ATIS test split, span-level slot F1 (conlleval "
        "semantics). The ensemble's tags are the Viterbi path of the members' summed "
        "scores (emissions and CRF transitions averaged); its intent the highest mean "
        "probability.",
        "",
        "| model | test slot F1 | test intent acc. |",
        "|---|---|---|",
    ]
    for seed, (f1, intent) in zip(args.seeds, members, strict=True):
        lines.append(f"| default, seed {seed} | {f1:.2f} | {intent:.2f} |")
    lines += [
        f"| members' mean | {statistics.mean(f1s):.2f} | "
        f"{statistics.mean(m[1] for m in members):.2f} |",
    ]
    for k, (f1, intent) in together.items():
        seeds = ", ".join(str(seed) for seed in args.seeds[:k])
        lines.append(f"| ensemble of {k} (seeds {seeds}) | **{f1:.2f}** | {intent:.2f} |")
    lines += [
        "",
        f"Training time: one member per default training (members "
        f"{', '.join(f'{w:.0f}' for w in walls)} s); an ensemble of k costs k of them.",
    ]
    # Not a default: its figures are a record in docs/experiments/, not the reference.
    EXPERIMENT.write_text(
        "# An ensemble of default models (issue 5; not a default)\n\n"
        + "\n".join([BEGIN, *lines, END])
        + "\n",
        encoding="utf-8",
    )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
