"""Text as people type it: ATIS rewritten in sentence case with a closing mark, and
Chinese without spaces, served by the model's own raw-text graph.

    python bench/typed_text.py                    # ATIS and resume_ner, 1 seed
    python bench/typed_text.py --seeds 3 --corpora atis

For each corpus it trains `train.py`'s default (no model flags) on train, early
stopping on valid, then tags the test split three ways with `SlotFiller`:
- the corpus's own tokens (evaluate.py's path): the clean figure;
- ATIS typed (`typed_utterance`): sentence case; city, airport, airline and state
  names, months and days capitalized; airport and airline codes in capitals; a
  closing "?" (questions) or "." glued to the last word; resume_ner typed as
  `"".join(tokens)`;
- through `SlotFiller.tag_text`, the SavedModel's own function (tokenizer in the
  graph).
Slot F1 of the typed text is scored on the original words: each original word takes
the tag of the served token at its character offset. A predicted value that holds a
punctuation mark its gold words lack is counted. The ATIS run also reports the
expected calibration error of span confidence (slotkeras.calibration). Results go
to docs/benchmarks.md.
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
BEGIN, END = "<!-- typed-text:begin -->", "<!-- typed-text:end -->"

CAPITALIZED = ("city_name", "airport_name", "airline_name", "state_name", "month_name",
               "day_name", "country_name")  # fmt: skip
UPPER = ("airport_code", "airline_code")
# Openings of questions and of requests people end with "?" ("show me ...?").
QUESTION_WORDS = {
    "what", "which", "how", "when", "where", "who", "is", "are", "do", "does", "can",
    "could", "would", "will", "may", "shall", "list", "show", "give",
}  # fmt: skip


def typed_utterance(tokens, tags) -> tuple[str, list[tuple[int, int]]]:
    """`tokens` as a person types them, and each original token's code point span in
    the typed text."""
    words = []
    for token, tag in zip(tokens, tags, strict=True):
        kind = tag[2:] if tag != "O" else ""
        if any(kind.endswith(name) for name in UPPER):
            token = token.upper()
        elif any(kind.endswith(name) for name in CAPITALIZED):
            token = " ".join(part[:1].upper() + part[1:] for part in token.split(" "))
        words.append(token)
    if words:
        words[0] = words[0][:1].upper() + words[0][1:]
    spans, position = [], 0
    for word in words:
        spans.append((position, position + len(word)))
        position += len(word) + 1
    question = bool(tokens) and tokens[0] in QUESTION_WORDS
    return " ".join(words) + ("?" if question else "." if tokens else ""), spans


def tags_on_words(prediction, spans) -> list[str]:
    """Each original word's tag: that of the served token that starts where the
    word starts (its first token, were it split), or "O" when none does."""
    by_start = dict(zip(prediction.starts, prediction.tags))
    return [by_start.get(start, "O") for start, _ in spans]


def leaked_marks(prediction, utterance_tokens, spans) -> int:
    """Predicted values that hold a punctuation mark that the words they cover lack."""
    from slotkeras.tokenizer import MARKS

    count = 0
    for span in prediction.spans():
        covered = [
            token
            for token, (start, end) in zip(utterance_tokens, spans)
            if start < span["end"] and end > span["start"]
        ]
        marks = {c for c in span["value"] if c in MARKS}
        if marks - {c for token in covered for c in token}:
            count += 1
    return count


def score_typed(filler, utterances, joiner: str | None = None) -> dict:
    """Slot F1 of `utterances` typed (ATIS-style, or joined by `joiner`) and served
    through `tag_text`, scored on the original words; with the clean figure."""
    from slotkeras import evaluation

    texts, spans = [], []
    for u in utterances:
        if joiner is None:
            text, word_spans = typed_utterance(u.tokens, u.tags)
        else:
            text, position, word_spans = joiner.join(u.tokens), 0, []
            for token in u.tokens:
                word_spans.append((position, position + len(token)))
                position += len(token) + len(joiner)
        texts.append(text)
        spans.append(word_spans)
    served = filler.tag_text(texts)
    gold = [list(u.tags) for u in utterances]
    typed_tags = [tags_on_words(p, s) for p, s in zip(served, spans, strict=True)]
    clean = filler.predict([u.tokens for u in utterances])
    leaks = sum(
        leaked_marks(p, u.tokens, s) for p, u, s in zip(served, utterances, spans, strict=True)
    )
    return {
        "clean_slot_f1": evaluation.slot_f1(gold, [p.tags for p in clean]),
        "typed_slot_f1": evaluation.slot_f1(gold, typed_tags),
        "leaked_values": leaks,
        "predicted_values": sum(len(p.spans()) for p in served),
        "example": texts[0],
        "clean_predictions": clean,
    }


def run(corpus: str, seed: int, tmp: Path) -> dict:
    sys.path.insert(0, str(ROOT))
    from slotkeras import data
    from slotkeras.calibration import reliability
    from slotkeras.slot_filler import SlotFiller

    folder = SHARED / corpus
    model = tmp / f"{corpus}-{seed}"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "train.py", "--train", str(folder), "--output", str(model),
               "--seed", str(seed), "--verbose", "0", "--no-export"]  # fmt: skip
    subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    filler = SlotFiller.load(model)
    test = data.read_utterances(folder / "test")
    result = score_typed(filler, test, joiner="" if filler.tokenizer.characters else None)
    calibration = reliability([u.tags for u in test], result.pop("clean_predictions"))
    result["span_ece"] = calibration["expected_calibration_error"]
    result["spans"] = calibration["spans"]
    result["calibration_bins"] = calibration["bins"]
    valid = data.read_utterances(folder / "valid")
    result["valid_span_ece"] = reliability(
        [u.tags for u in valid], filler.predict([u.tokens for u in valid])
    )["expected_calibration_error"]
    return {"corpus": corpus, "seed": seed, "tokenizer": filler.tokenizer.get_config(), **result}


def publish(rows: list[dict], command: str) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    from accuracy import machine, mean_std
    from accuracy import publish as write_section

    lines = [
        f"Measured {datetime.date.today().isoformat()} on {machine()} with `{command}`: the "
        "default trained on each corpus's train split (early stopping on valid), the test "
        "split tagged from the corpus's tokens (clean) and from typed text through the "
        "SavedModel's own raw-text function (`SlotFiller.tag_text`), scored on the original "
        "words. Leaked values: predicted slot values holding a punctuation mark that their "
        "gold words lack.",
        "",
        "| corpus | typed as | seeds | clean slot F1 | typed slot F1 | difference | leaked values "
        "| span ECE (test) | span ECE (valid) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for corpus in sorted({r["corpus"] for r in rows}):
        runs = [r for r in rows if r["corpus"] == corpus]
        how = (
            "without spaces" if corpus == "resume_ner" else "sentence case, names capitalized, ?/."
        )
        clean = [r["clean_slot_f1"] for r in runs]
        typed = [r["typed_slot_f1"] for r in runs]
        diff = [t - c for t, c in zip(typed, clean)]
        lines.append(
            f"| {corpus} | {how} | {len(runs)} | {mean_std(clean)} | {mean_std(typed)} | "
            f"{statistics.mean(diff):+.2f} | {sum(r['leaked_values'] for r in runs)} of "
            f"{sum(r['predicted_values'] for r in runs)} | "
            f"{mean_std([r['span_ece'] for r in runs])} | "
            f"{mean_std([r['valid_span_ece'] for r in runs])} |"
        )
    lines += ["", "Example typed utterances: " + "; ".join(
        f"`{r['example']}`" for r in rows if r["seed"] == rows[0]["seed"]
    ) + "."]  # fmt: skip
    first = next((r for r in rows if r["corpus"] == "atis"), None)
    if first:
        lines += [
            "",
            f"Reliability of span confidence on the ATIS test split (seed {first['seed']}, "
            f"{first['spans']} predicted spans; confidence = the mean tag marginal of "
            "the span):",
            "",
            "| confidence | spans | mean confidence | accuracy |",
            "|---|---|---|---|",
        ]
        for b in first["calibration_bins"]:
            if b["count"]:
                lines.append(
                    f"| {b['lower']:.1f}-{b['upper']:.1f} | {b['count']} | "
                    f"{b['confidence']:.3f} | {b['accuracy']:.3f} |"
                )
    write_section(BEGIN, END, lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--corpora", nargs="+", default=["atis", "resume_ner"])
    p.add_argument("--seeds", type=int, default=1)
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for corpus in args.corpora:
            for seed in range(1, args.seeds + 1):
                row = run(corpus, seed, Path(tmp))
                print(json.dumps({k: v for k, v in row.items() if k != "calibration_bins"}))
                rows.append(row)
    command = "python bench/typed_text.py" + ("" if argv is None else " " + " ".join(argv))
    if argv is None and len(sys.argv) > 1:
        command = "python bench/typed_text.py " + " ".join(sys.argv[1:])
    publish(rows, command)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
