"""The linear-chain CRF anchor: what a CRF over a word window scores on each test split.

    python bench/crf_anchor.py --corpus atis mit_movie_trivia resume_ner

The neural taggers are worth their cost only by their margin over this anchor, so it
is measured on the same splits and with the same scorer as bench/accuracy.py
(`slotkeras.evaluation.slot_f1`: span level, conlleval semantics). sklearn-crfsuite
(`pip install -e '.[bench]'`), L-BFGS, c1 = c2 = 0.05, 200 iterations; trained on train
+ valid (nothing is tuned here, so the validation split has no other use) and scored
once on test. Features of token i: the word as given (the corpora are lower case, or
one Chinese character a token), its 3-letter prefix and suffix, whether it is a digit,
the words at offsets -2..+2 (BOS/EOS past the edges) and its bigrams with the previous
and with the next word. No randomness: a rerun gives the same figure.

`--corpus` takes the NAMEs and PATHs of bench/accuracy.py, but the anchor is a test
figure: a corpus without a test/ split is refused. Each result is appended to
bench/results/crf_anchor.jsonl and printed; the accuracy sections of docs/benchmarks.md
are rebuilt, and show the latest anchor of each corpus.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time

from accuracy import (
    CRF_RESULTS,
    DOC,
    RESULTS,
    ROOT,
    Corpus,
    machine,
    read_rows,
    resolve_corpus,
    test_folder,
    write_doc,
)

sys.path.insert(0, str(ROOT))  # the project's readers and scorer, as the benchmark uses

from slotkeras import data  # noqa: E402
from slotkeras.evaluation import slot_f1  # noqa: E402

# The settings (16); changing one makes a different anchor, not a better one.
C1 = C2 = 0.05
MAX_ITERATIONS = 200
BOS, EOS = "<s>", "</s>"


def token_features(tokens: tuple[str, ...], i: int) -> dict:
    """The features of token i (see the module's docstring)."""

    def word(offset: int) -> str:
        j = i + offset
        return BOS if j < 0 else EOS if j >= len(tokens) else tokens[j]

    features = {f"w[{offset:+d}]": word(offset) for offset in range(-2, 3)}
    features["prefix3"] = tokens[i][:3]
    features["suffix3"] = tokens[i][-3:]
    features["digit"] = tokens[i].isdigit()
    features["w[-1]|w[0]"] = f"{word(-1)}|{tokens[i]}"
    features["w[0]|w[+1]"] = f"{tokens[i]}|{word(1)}"
    return features


def sentence_features(tokens: tuple[str, ...]) -> list[dict]:
    return [token_features(tokens, i) for i in range(len(tokens))]


def anchor(corpus: Corpus) -> dict:
    """Trains the CRF on the corpus's train + valid splits and scores it on test."""
    import sklearn_crfsuite  # here, so that --help works without the bench extra

    splits = data.read_splits(corpus.path)
    train = splits["train"] + splits.get("valid", [])
    test = splits["test"]
    started = time.time()
    crf = sklearn_crfsuite.CRF(algorithm="lbfgs", c1=C1, c2=C2, max_iterations=MAX_ITERATIONS)
    crf.fit([sentence_features(u.tokens) for u in train], [list(u.tags) for u in train])
    trained = time.time()
    predicted = crf.predict([sentence_features(u.tokens) for u in test])
    return {
        "corpus": corpus.name,
        "data": corpus.path,
        "test_slot_f1": slot_f1([u.tags for u in test], predicted),
        "seconds": round(time.time() - started, 1),
        "train_seconds": round(trained - started, 1),
        "train_utterances": len(train),
        "test_utterances": len(test),
        "c1": C1,
        "c2": C2,
        "max_iterations": MAX_ITERATIONS,
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--corpus",
        dest="corpora",
        nargs="+",
        type=resolve_corpus,
        required=True,
        metavar="NAME|PATH",
        help="corpora to score, each a folder name under ../shared/data or a folder "
        "holding train/, test/ and optionally valid/",
    )
    args = p.parse_args(argv)
    missing = [c.name for c in args.corpora if test_folder(c.path) is None]
    if missing:
        p.error(f"no train/ and test/ split in {', '.join(missing)}: the anchor is a test figure")
    try:
        import sklearn_crfsuite  # noqa: F401
    except ImportError:
        p.error("needs sklearn-crfsuite: pip install -e '.[bench]'")
    command = "python bench/crf_anchor.py " + " ".join(argv if argv is not None else sys.argv[1:])
    CRF_RESULTS.parent.mkdir(parents=True, exist_ok=True)
    for corpus in args.corpora:
        row = {**anchor(corpus), "command": command}
        with open(CRF_RESULTS, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
        print(json.dumps(row, ensure_ascii=False), flush=True)
    write_doc(read_rows(RESULTS), "python bench/accuracy.py")
    print(f"wrote {CRF_RESULTS.relative_to(ROOT)} and the accuracy sections of {DOC.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
